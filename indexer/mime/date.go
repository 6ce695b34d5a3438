package mime

import (
	"strings"
	"time"
)

// parseDate parses an RFC 5322 date leniently: the weekday is optional and
// unchecked, fields may come in asctime order, the day may be one digit,
// years may have two or three digits (RFC 5322 section 4.3), seconds are
// optional, the zone may be numeric ("-0800", "+05:30"), a name (GMT, UT,
// EST, PDT, CET, ...), "GMT+2", or missing (UTC), and comments such as
// "(PST)" are ignored. The result is in the zone written, as a FixedZone.
func parseDate(s string) (time.Time, bool) {
	var toks [16]string
	n := 0
	for i := 0; i < len(s) && n < len(toks); {
		c := s[i]
		switch {
		case c == '(':
			_, i, _ = comment(s, i)
		case c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n':
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t,\r\n(", rune(s[j])) {
				j++
			}
			toks[n] = s[i:j]
			n++
			i = j
		}
	}
	d := dateParts{day: -1, month: -1, year: -1, hour: -1}
	for _, t := range toks[:n] {
		d.token(t, 0)
	}
	return d.time()
}

type dateParts struct {
	day, month, year, yearDigits int
	hour, min, sec               int
	zone                         int // seconds east of UTC
	haveZone                     bool
	pm, am                       bool
	bad                          bool
}

func (d *dateParts) token(t string, depth int) {
	if t == "" {
		return
	}
	switch c := t[0]; {
	case c == '+' || c == '-':
		d.setZone(t)
	case strings.IndexByte(t, ':') > 0:
		d.clock(t)
	case isDigit(c):
		// "22-Aug-2002", "2002-08-22", "22/08/2002".
		if i := strings.IndexAny(t, "-/."); i > 0 && depth == 0 {
			d.dashed(t)
			return
		}
		if !allDigits(t) {
			d.bad = true
			return
		}
		v := atoi(t)
		switch {
		case len(t) <= 2 && d.day < 0:
			d.day = v
		case len(t) <= 4 && d.year < 0:
			d.year, d.yearDigits = v, len(t)
		case len(t) <= 2 && d.month < 0 && d.year >= 0:
			d.month = v
		case len(t) <= 2:
			d.bad = true
		}
	default:
		lt := strings.ToLower(t)
		if m := monthIndex(lt); m > 0 {
			if d.month < 0 {
				d.month = m
			}
			return
		}
		if isWeekday(lt) {
			return
		}
		switch lt {
		case "am", "a.m.":
			d.am = true
			return
		case "pm", "p.m.":
			d.pm = true
			return
		}
		for _, pre := range []string{"gmt", "utc", "ut"} {
			if strings.HasPrefix(lt, pre) && len(lt) > len(pre) && (lt[len(pre)] == '+' || lt[len(pre)] == '-') {
				d.setZone(lt[len(pre):])
				return
			}
		}
		if off, ok := zoneNames[lt]; ok {
			if !d.haveZone {
				d.zone, d.haveZone = off*60, true
			}
			return
		}
		if len(lt) == 1 && 'a' <= lt[0] && lt[0] <= 'z' {
			// Military zones: RFC 5322 says to take them as -0000.
			if !d.haveZone {
				d.haveZone = true
			}
			return
		}
		// Unknown words are ignored: "Date: Tue, 27 Aug 2002 10:37 -0700 Pacific".
	}
}

// dashed splits "22-Aug-2002" or "2002-08-22" style dates.
func (d *dateParts) dashed(t string) {
	parts := strings.FieldsFunc(t, func(r rune) bool { return r == '-' || r == '/' || r == '.' })
	if len(parts) != 3 {
		d.bad = true
		return
	}
	if len(parts[0]) == 4 && allDigits(parts[0]) {
		// ISO order; a "T10:30:00" time may be glued to the day.
		day := parts[2]
		if i := strings.IndexAny(day, "Tt"); i > 0 {
			d.token(day[i+1:], 1)
			day = day[:i]
		}
		if !allDigits(parts[1]) || !allDigits(day) || len(day) > 2 || len(parts[1]) > 2 {
			d.bad = true
			return
		}
		d.year, d.yearDigits = atoi(parts[0]), 4
		d.month = atoi(parts[1])
		d.day = atoi(day)
		return
	}
	if allDigits(parts[0]) && allDigits(parts[1]) && allDigits(parts[2]) {
		// "22.08.2002" day first, "08/22/2002" month first.
		a, b := atoi(parts[0]), atoi(parts[1])
		if strings.IndexByte(t, '/') >= 0 {
			a, b = b, a
		}
		if b > 12 && a <= 12 {
			a, b = b, a
		}
		d.day, d.month = a, b
		d.year, d.yearDigits = atoi(parts[2]), len(parts[2])
		return
	}
	for _, p := range parts {
		d.token(p, 1)
	}
}

func (d *dateParts) clock(t string) {
	// A zone may be glued on: "10:30:00+0200", "10:30:00GMT".
	if i := strings.IndexAny(t, "+-"); i > 0 {
		d.setZone(t[i:])
		t = t[:i]
	} else if i := strings.IndexFunc(t, func(r rune) bool { return r >= 'A' }); i > 0 {
		d.token(t[i:], 1)
		t = t[:i]
	}
	parts := strings.Split(t, ":")
	if len(parts) < 2 || len(parts) > 3 {
		d.bad = true
		return
	}
	var v [3]int
	for i, p := range parts {
		if p == "" || len(p) > 2 || !allDigits(p) {
			d.bad = true
			return
		}
		v[i] = atoi(p)
	}
	if d.hour < 0 {
		d.hour, d.min, d.sec = v[0], v[1], v[2]
	}
}

func (d *dateParts) setZone(t string) {
	if d.haveZone || len(t) < 2 {
		return
	}
	sign := 1
	if t[0] == '-' || strings.HasPrefix(t, "+-") {
		sign = -1 // "+-0500" is a common typo of "-0500"
	}
	t = strings.TrimLeft(t, "+-")
	t = strings.Replace(t, ":", "", 1)
	if !allDigits(t) {
		d.bad = true
		return
	}
	var h, m int
	switch len(t) {
	case 1, 2:
		h = atoi(t)
	case 3:
		h, m = atoi(t[:1]), atoi(t[1:])
	case 4:
		h, m = atoi(t[:2]), atoi(t[2:])
	default:
		d.bad = true
		return
	}
	if h > 23 || m > 59 {
		d.bad = true
		return
	}
	d.zone, d.haveZone = sign*(h*3600+m*60), true
}

func (d *dateParts) time() (time.Time, bool) {
	if d.bad || d.day < 1 || d.month < 1 || d.month > 12 || d.year < 0 {
		return time.Time{}, false
	}
	year := d.year
	switch {
	case d.yearDigits <= 2 && year < 50:
		year += 2000
	case d.yearDigits <= 3 && year < 1000:
		year += 1900
	}
	hour, min, sec := d.hour, d.min, d.sec
	if hour < 0 {
		hour, min, sec = 0, 0, 0
	}
	if d.pm && hour < 12 {
		hour += 12
	} else if d.am && hour == 12 {
		hour = 0
	}
	if sec == 60 {
		sec = 59 // leap second
	}
	if hour > 23 || min > 59 || sec > 59 || year > 9999 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(d.month), d.day, hour, min, sec, 0, time.FixedZone("", d.zone))
	if t.Day() != d.day {
		return time.Time{}, false // 31 Feb
	}
	return t, true
}

var (
	months     = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	monthNames = [...]string{"january", "february", "march", "april", "may", "june", "july",
		"august", "september", "october", "november", "december"}
)

// monthIndex returns 1-12 for an English month name or its abbreviation.
func monthIndex(lt string) int {
	if len(lt) < 3 {
		return 0
	}
	for i, m := range months {
		if strings.HasPrefix(lt, m) {
			if len(lt) == 3 || strings.HasPrefix(monthNames[i], lt) || lt == "sept" || lt == m+"." {
				return i + 1
			}
		}
	}
	return 0
}

func isWeekday(lt string) bool {
	if len(lt) < 2 {
		return false
	}
	for _, w := range [...]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		if strings.HasPrefix(w, lt) || lt == w[:3]+"." {
			return true
		}
	}
	return lt == "tues" || lt == "thur" || lt == "thurs"
}

// zoneNames maps zone abbreviations seen in mail to minutes east of UTC.
var zoneNames = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0, "bst": 60,
	"est": -300, "edt": -240, "cst": -360, "cdt": -300,
	"mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
	"akst": -540, "akdt": -480, "hst": -600, "ast": -240, "adt": -180,
	"nst": -210, "ndt": -150,
	"cet": 60, "cest": 120, "met": 60, "mest": 120, "mez": 60, "mesz": 120,
	"west": 60, "eet": 120, "eest": 180, "msk": 180, "msd": 240,
	"jst": 540, "kst": 540, "hkt": 480, "sgt": 480, "awst": 480,
	"acst": 570, "acdt": 630, "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780,
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// atoi converts a short all-digit string.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
