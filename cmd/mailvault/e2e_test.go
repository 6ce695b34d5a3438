package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

// searchFact is a search with an answer known from the corpus files
// themselves (found with grep, find and Python's email package when the test
// was written, not by re-implementing the search here).
type searchFact struct {
	args    []string         // flags and query words after --data DIR
	total   int              // matching messages
	exactly []corpustest.Msg // when set: exactly these messages
	perBox  map[string]int   // when set: occurrences per mailbox
}

// Corpus messages the facts name.
var (
	msgCheili      = corpustest.Msg{Group: "spam-2", ID: "00410.fb7b31cdd9d053f8b446da7ce89383fa"}
	msgGB2312a     = corpustest.Msg{Group: "spam-2", ID: "01125.46ca779f86e1dd0a03c3ffc67b57f55e"}
	msgGB2312b     = corpustest.Msg{Group: "spam-2", ID: "01217.d5a1734ec521c1bd55270eca3ab4acd8"}
	msgBig5a       = corpustest.Msg{Group: "spam-2", ID: "00706.5116018237368c3633823b2d24f8ac86"}
	msgBig5b       = corpustest.Msg{Group: "spam-2", ID: "00708.89f1f9108884517148fdbd744e18ec1e"}
	msgQPSoftBreak = corpustest.Msg{Group: "spam-2", ID: "00924.3b34d4e598f24957151e368efcfb069b"}
	msgHTMLOnly    = corpustest.Msg{Group: "spam-2", ID: "01353.369f79f8f31f3b18bdb5d1006207b52e"}
	msgHTMLFrench  = corpustest.Msg{Group: "spam-2", ID: "00471.df77fa930951f79466c195052ff56816"}
	msgHTMLAmp     = corpustest.Msg{Group: "spam-1", ID: "00321.22ec127de780c31da00ae5e1c1aa32e4"}
	msgHTMLNumeric = corpustest.Msg{Group: "spam-2", ID: "00913.2c4aa5dfdd0ecb0331c674b73f40e924"}
	msgQPFrench    = corpustest.Msg{Group: "spam-2", ID: "00200.2fcabc2b58baa0ebc051e3ea3dfafd8f"}
	msgWinmail     = corpustest.Msg{Group: "easy-ham-2", ID: "01177.bead19a7b498c5c483805291331e769c"}
	msgALSAPatch   = corpustest.Msg{Group: "easy-ham-1", ID: "01045.5f6b92624699ddf883fc56e9b158c031"}
	// msgALSASpecPatch attaches alsa-driver-spec.patch.
	msgALSASpecPatch = corpustest.Msg{Group: "easy-ham-1", ID: "01225.394c24658bf3f9f8f741bcbc94ca017c"}
	msgLargest       = corpustest.Msg{Group: "hard-ham-1", ID: "00039.b2b936a8501444b213f61f9ff193b480"}
)

// corpusFacts are the searches whose answers were derived from the corpus
// (the Maildir++ tree of scripts/fetch-corpus.sh, 6,046 files) by hand.
// Shell commands run in the maildir/ directory.
func corpusFacts(c *corpustest.Corpus) []searchFact {
	return []searchFact{
		// Sender. Header-only grep (one message quotes "From: Tom
		// <tomwhore@slack.net>" in its body, so a plain grep -l finds 82):
		//   for f in .*/cur/*; do sed '/^\r\?$/q' "$f" |
		//     grep -qi '^\(From\|Sender\):.*tomwhore@slack\.net' && echo "$f"; done |
		//     cut -d/ -f1 | sort | uniq -c
		// Python's email.utils.parseaddr over all From: headers agrees.
		{args: []string{"from:tomwhore@slack.net"}, total: 81, perBox: map[string]int{"easy-ham-1": 55, "easy-ham-2": 26}},
		{args: []string{"--mailbox", "easy-ham-2", "from:tomwhore@slack.net"}, total: 26, perBox: map[string]int{"easy-ham-2": 26}},
		// Subject word:
		//   for f in .*/cur/*; do sed '/^\r\?$/q' "$f" |
		//     grep -qiw '^Subject:.*mortgage' && echo "$f"; done | cut -d/ -f1 | sort | uniq -c
		// (and the same from decoded subjects with Python).
		{args: []string{"subject:mortgage"}, total: 63, perBox: map[string]int{"spam-1": 11, "spam-2": 52}},

		// RFC 2047 encoded words, decoded with Python's email.header:
		//   ISO-8859-1 Q: "=?iso-8859-1?Q?Fw:_CD_Nua_do_dhamhsa=ED_Ch=E9il=ED?="
		//   (grep -rl 'Ch=E9il=ED' finds only this file).
		{args: []string{"subject:Chéilí"}, total: 1, exactly: []corpustest.Msg{msgCheili}},
		{args: []string{"Chéilí"}, total: 1, exactly: []corpustest.Msg{msgCheili}},
		//   GB2312 B: "=?GB2312?B?uOW8/qO60rDC+cWu09HPsru21tC5+r/huOc=?=" is
		//   "稿件：野蛮女友喜欢中国酷哥"; "=?GB2312?B?uOW8/qO60rDC+cWu09FWU6G2xKe57dOi0++htw==?="
		//   is "稿件：野蛮女友VS《魔鬼英语》". Han is indexed per character, so
		//   the word matches as a phrase.
		{args: []string{"subject:中国酷哥"}, total: 1, exactly: []corpustest.Msg{msgGB2312a}},
		{args: []string{"subject:野蛮女友"}, total: 2, exactly: []corpustest.Msg{msgGB2312a, msgGB2312b}},
		//   Big5 Q: "[SA] =?big5?Q?=BE=A5=A4=F4=A7X=A7=E5=B5o=B9q=A4l=B3=F8?=" is
		//   "[SA] 墨水匣批發電子報", in two messages.
		{args: []string{"subject:墨水匣批發電子報"}, total: 2, exactly: []corpustest.Msg{msgBig5a, msgBig5b}},

		// Quoted-printable: "aliyo=\nrsunuz!" (a soft line break) in a
		// text/plain QP body; grep -rli aliyorsunuz finds nothing (checked in
		// the test too).
		{args: []string{"aliyorsunuz"}, total: 1, exactly: []corpustest.Msg{msgQPSoftBreak}},
		{args: []string{"body:aliyorsunuz"}, total: 1, exactly: []corpustest.Msg{msgQPSoftBreak}},
		// HTML-only message (one text/html part) with entities:
		// "eletrost&aacute;tica"; grep -rl finds the entity form only in
		// this file and the decoded word in none.
		{args: []string{"eletrostática"}, total: 1, exactly: []corpustest.Msg{msgHTMLOnly}},
		// "déconfigurée": written "d&eacute;configur&eacute;e" in an HTML-only
		// message and "d=E9configur=E9e" in a QP one:
		//   grep -rlE 'd(=E9|&eacute;)configur(=E9|&eacute;)e'
		{args: []string{"déconfigurée"}, total: 2, exactly: []corpustest.Msg{msgHTMLFrench, msgQPFrench}},
		// &amp; in an HTML-only (QP) message: "Ceiling&amp;Hanging"; grep -rliE
		// 'ceiling.{0,6}hanging' finds only this file. The query word splits
		// into the tokens ceiling, hanging, which must be adjacent: they are
		// only when the entity is decoded (else "amp" is between them).
		{args: []string{"Ceiling&Hanging"}, total: 1, exactly: []corpustest.Msg{msgHTMLAmp}},
		// A numeric entity in the 128-159 range, which HTML reads as
		// windows-1252: "Gaming&#146;s casinos" is "Gaming’s casinos" (U+2019,
		// a possessive the analyser folds to "gaming"; undecoded, "146"
		// would stand between the words). grep -rlP
		// 'Gaming(\x92|\xe2\x80\x99|&#146;|&#8217;|=92)s' finds only this file.
		{args: []string{`"Gaming’s casinos"`}, total: 1, exactly: []corpustest.Msg{msgHTMLNumeric}},

		// Attachment file names: grep -rlE 'name="?signature\.ng' (5 files,
		// all easy-ham-1), 'name="?winmail\.dat', 'name="?alsa-driver\.spec\.patch'
		// and 'name="?alsa-driver-spec\.patch': a name is the words of its
		// parts (alsa driver spec patch), whatever punctuation joins them.
		{args: []string{"filename:signature.ng"}, total: 5, perBox: map[string]int{"easy-ham-1": 5}},
		{args: []string{"attachment:signature.ng"}, total: 5, perBox: map[string]int{"easy-ham-1": 5}},
		{args: []string{"filename:winmail.dat"}, total: 1, exactly: []corpustest.Msg{msgWinmail}},
		{args: []string{"attachment:alsa-driver.spec.patch"}, total: 2, exactly: []corpustest.Msg{msgALSAPatch, msgALSASpecPatch}},
		// RFC 2047 in a name= parameter:
		// name="=?iso-2022-jp?B?GyRCJV4lJCVrJTklSCE8JXNJPTwoGyhCLmJtcA==?=".
		{args: []string{"filename:マイルストーン表示.bmp"}, total: 1, exactly: []corpustest.Msg{msgLargest}},

		// Sent dates, the day as written in the Date: header (Python's
		// email.utils.parsedate_tz; 66 messages say year "0102" and count as
		// before; two dated "2002/09/14 Sat 02:29:32 CDT" that Python does
		// not parse are in September 2002):
		{args: []string{"before:2002-08-01"}, total: 2010},
		{args: []string{"after:2002-10-01"}, total: 856},
		{args: []string{"after:2002-08-01", "before:2002-10-01"}, total: 3178 + 2},

		// Sizes, strict: find . -path '*/cur/*' -size +102400c | wc -l
		// and -size -1024c; the largest file has 300734 bytes.
		{args: []string{"larger:100k"}, total: 7},
		{args: []string{"smaller:1k"}, total: 141},
		{args: []string{"larger:300733"}, total: 1, exactly: []corpustest.Msg{msgLargest}},
		{args: []string{"larger:300734"}, total: 0},

		// Phrases of stop words: grep -rlic 'as a matter of fact' (12) and
		// 'on the other hand' (40), 'at the end of the day' (9; in two of
		// them "day.we", which the analyser splits into day, we).
		{args: []string{`"as a matter of fact"`}, total: 12},
		{args: []string{`"on the other hand"`}, total: 40},
		{args: []string{`"at the end of the day"`}, total: 9},

		// Negation, from the counts above.
		{args: []string{"--", "-from:tomwhore@slack.net"}, total: c.Total - 81},
		{args: []string{"--", "-mailbox:spam-1", "subject:mortgage"}, total: 52, perBox: map[string]int{"spam-2": 52}},
		// Everything after "--" is the query (main.go's parse), so a negation
		// later in the query must work as well as a leading one.
		{args: []string{"--", "subject:mortgage", "-mailbox:spam-1"}, total: 52, perBox: map[string]int{"spam-2": 52}},
		{args: []string{"subject:mortgage", "NOT", "mailbox:spam-1"}, total: 52, perBox: map[string]int{"spam-2": 52}},

		// Scoping by account and mailbox.
		{args: []string{"--mailbox", "spam-2", "subject:mortgage"}, total: 52, perBox: map[string]int{"spam-2": 52}},
		{args: []string{"mailbox:spam-1", "subject:mortgage"}, total: 11, perBox: map[string]int{"spam-1": 11}},
		{args: []string{"--account", "sa", "subject:mortgage"}, total: 63},
		{args: []string{"account:sa", "subject:mortgage"}, total: 63},
		{args: []string{"--account", "nobody", "subject:mortgage"}, total: 0},
		{args: []string{"account:nobody", "subject:mortgage"}, total: 0},
	}
}

// checkFacts runs every fact and returns the messages each one found, by
// its command line, to compare runs.
func checkFacts(t *testing.T, mv runner, data string, c *corpustest.Corpus, facts []searchFact) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, f := range facts {
		name := strings.Join(f.args, " ")
		hits := searchAll(t, mv, data, f.args...)
		set := shaSet(hits)
		got[name] = set
		if len(set) != f.total {
			t.Errorf("search %s: %d messages, want %d", name, len(set), f.total)
		}
		if n := searchTotal(t, mv, data, f.args...); n != f.total {
			t.Errorf("search %s: reports %d matching messages, want %d", name, n, f.total)
		}
		if f.exactly != nil {
			var want []string
			for _, m := range f.exactly {
				_, sha, _ := c.Find(t, m)
				want = append(want, sha)
			}
			slices.Sort(want)
			if !slices.Equal(set, want) {
				t.Errorf("search %s: found %v, want exactly %v (%v)", name, set, want, f.exactly)
			}
		}
		if f.perBox != nil {
			boxes := map[string]int{}
			for _, h := range hits {
				boxes[h.Mailbox]++
			}
			if fmt.Sprint(boxes) != fmt.Sprint(f.perBox) {
				t.Errorf("search %s: occurrences per mailbox %v, want %v", name, boxes, f.perBox)
			}
		}
		for _, h := range hits {
			if h.Account != "sa" {
				t.Errorf("search %s: hit in account %q", name, h.Account)
				break
			}
		}
	}
	return got
}

func TestCorpusEndToEnd(t *testing.T) {
	root := corpustest.Maildir(t)
	start := time.Now()
	c := corpustest.Scan(t, root, msgQPSoftBreak.ID, msgHTMLOnly.ID)
	t.Logf("corpus: %d files in %d folders, %d distinct (sha256); scanned in %s", c.Total, len(c.Folders), c.Distinct, time.Since(start).Round(time.Millisecond))
	if c.Total != 6046 {
		t.Fatalf("corpus has %d message files, want 6046 (SpamAssassin corpus via scripts/fetch-corpus.sh)", c.Total)
	}
	checkCorpusPremises(t, c)

	mv := runner(inProcess)
	data := filepath.Join(t.TempDir(), "data")

	// Import the whole tree.
	phase := time.Now()
	r := mv(t, "import", "--data", data, "--account", "sa", "--json", root)
	if r.code != 0 {
		t.Fatalf("import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	sum := parseImportSummary(t, r)
	t.Logf("import: %+v in %s", sum, time.Since(phase).Round(time.Millisecond))
	if sum.stored != c.Distinct || sum.linked != c.Total-c.Distinct || sum.present != 0 || sum.fileErrors != 0 {
		t.Errorf("import summary %+v: want stored %d (distinct contents), linked %d, already_present 0, file_errors 0",
			sum, c.Distinct, c.Total-c.Distinct)
	}

	// Status: every folder, every file, once.
	st := statusOf(t, mv, data, "sa")
	checkStatusMatchesCorpus(t, st, c.Folders)
	parseErrors := 0
	for _, s := range st {
		parseErrors += s.ParseErrors
	}
	if c.Distinct == c.Total && parseErrors != sum.parseErrors {
		t.Errorf("status shows %d messages with parse errors, import reported %d", parseErrors, sum.parseErrors)
	}
	if sum.parseErrors >= c.Total/10 {
		t.Errorf("import: %d of %d messages with parse errors; a real corpus should parse far better", sum.parseErrors, c.Total)
	}
	all := searchAll(t, mv, data, "larger:0")
	checkOccurrences(t, all, c.Folders)

	// Searches with known answers.
	facts := corpusFacts(c)
	phase = time.Now()
	first := checkFacts(t, mv, data, c, facts)
	t.Logf("%d searches in %s", len(facts), time.Since(phase).Round(time.Millisecond))
	checkAttachmentCounts(t, mv, data, c)
	checkJSONHit(t, mv, data, c, st)
	checkCorpusExport(t, mv, data, c)

	// Importing again changes nothing.
	phase = time.Now()
	r = mv(t, "import", "--data", data, "--account", "sa", "--json", root)
	if r.code != 0 {
		t.Fatalf("second import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	sum = parseImportSummary(t, r)
	t.Logf("second import: %+v in %s", sum, time.Since(phase).Round(time.Millisecond))
	if sum.stored != 0 || sum.linked != 0 || sum.present != c.Total || sum.fileErrors != 0 || sum.parseErrors != 0 {
		t.Errorf("second import summary %+v: want 0 imported, %d already present", sum, c.Total)
	}
	checkStatusMatchesCorpus(t, statusOf(t, mv, data, "sa"), c.Folders)

	phase = time.Now()
	verifyOK(t, mv, data, c.Distinct)
	t.Logf("verify in %s", time.Since(phase).Round(time.Millisecond))

	// The index is a cache: rebuilt, it answers the same.
	phase = time.Now()
	r = mv(t, "reindex", "--data", data)
	if r.code != 0 {
		t.Fatalf("reindex: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if want := fmt.Sprintf("%d mailboxes, %d occurrences", len(c.Folders), c.Total); !strings.Contains(r.stdout, want) {
		t.Errorf("reindex printed %q, want it to say %q", r.stdout, want)
	}
	t.Logf("reindex in %s", time.Since(phase).Round(time.Millisecond))
	second := checkFacts(t, mv, data, c, facts)
	for _, f := range facts {
		name := strings.Join(f.args, " ")
		if !slices.Equal(first[name], second[name]) {
			t.Errorf("search %s: after reindex %d messages %v, before %d %v", name, len(second[name]), second[name], len(first[name]), first[name])
		}
	}
	checkOccurrences(t, searchAll(t, mv, data, "larger:0"), c.Folders)
	verifyOK(t, mv, data, c.Distinct)

	t.Run("BadQuery", func(t *testing.T) {
		for _, tc := range []struct {
			query  []string
			offset int
		}{
			{[]string{`subject:"abc`}, 8},
			{[]string{"from:"}, 5},
			{[]string{"(invoice", "report"}, 0},
			{[]string{"before:2002-13-45"}, 7},
		} {
			args := append([]string{"search", "--data", data, "--"}, tc.query...)
			r := mv(t, args...)
			want := fmt.Sprintf("at offset %d)", tc.offset)
			if r.code != 2 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("search %q: exit %d, stderr %q; want exit 2 and one line naming %q", tc.query, r.code, r.stderr, want)
			}
		}
	})
	t.Run("MissingDataDir", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-archive")
		for _, args := range [][]string{
			{"search", "--data", missing, "invoice"},
			{"status", "--data", missing},
			{"verify", "--data", missing},
		} {
			r := mv(t, args...)
			if r.code != 1 || !strings.Contains(r.stderr, missing) || !strings.Contains(r.stderr, "no archive") {
				t.Errorf("mailvault %s: exit %d, stderr %q; want exit 1 and an error naming %s and saying there is no archive",
					strings.Join(args, " "), r.code, r.stderr, missing)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Errorf("mailvault %s created %s (stat: %v)", args[0], missing, err)
			}
		}
	})
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, mv, c) })
	t.Run("CopiesAndScope", func(t *testing.T) {
		// One content in two accounts: stored once, linked once, and each
		// scope shows only its own occurrence.
		path, sha, _ := c.Find(t, msgCheili)
		data := filepath.Join(t.TempDir(), "data")
		r := mv(t, "import", "--data", data, "--account", "sa", "--mailbox", "spam-2", "--json", path)
		if sum := parseImportSummary(t, r); r.code != 0 || sum.stored != 1 || sum.linked != 0 {
			t.Fatalf("import: exit %d, %+v; want 1 stored (stderr %q)", r.code, sum, r.stderr)
		}
		r = mv(t, "import", "--data", data, "--account", "other", "--mailbox", "Archive", "--json", path)
		if sum := parseImportSummary(t, r); r.code != 0 || sum.stored != 0 || sum.linked != 1 {
			t.Fatalf("import of the same file elsewhere: exit %d, %+v; want 1 linked (stderr %q)", r.code, sum, r.stderr)
		}
		where := func(hits []hitJSON) []string {
			var out []string
			for _, h := range hits {
				if h.SHA256 != sha {
					t.Errorf("hit %s, want %s", h.SHA256, sha)
				}
				out = append(out, h.Account+"/"+h.Mailbox)
			}
			slices.Sort(out)
			return out
		}
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"Chéilí"}, []string{"other/Archive", "sa/spam-2"}},
			{[]string{"--mailbox", "spam-2", "Chéilí"}, []string{"sa/spam-2"}},
			{[]string{"mailbox:Archive", "Chéilí"}, []string{"other/Archive"}},
			{[]string{"--account", "other", "Chéilí"}, []string{"other/Archive"}},
			{[]string{"account:sa", "Chéilí"}, []string{"sa/spam-2"}},
			{[]string{"--account", "sa", "mailbox:Archive", "Chéilí"}, nil},
		} {
			if got := where(searchAll(t, mv, data, tc.args...)); !slices.Equal(got, tc.want) {
				t.Errorf("search %q: occurrences %v, want %v", tc.args, got, tc.want)
			}
		}
		verifyOK(t, mv, data, 1)
	})
	t.Run("SmallImports", func(t *testing.T) {
		// A small import finishes within milliseconds of opening the
		// archive, racing anything Open starts in the background. Each of
		// these imports one message into a new archive and must simply work.
		path, sha, _ := c.Find(t, msgWinmail)
		failed := 0
		for i := range 60 {
			data := filepath.Join(t.TempDir(), "data")
			r := mv(t, "import", "--data", data, "--account", "t", "--mailbox", "one", "--json", path)
			if r.code != 0 {
				failed++
				t.Errorf("import %d of one message into a new archive: exit %d, stderr %q", i, r.code, r.stderr)
				continue
			}
			if hits := searchAll(t, mv, data, "filename:winmail.dat"); len(hits) != 1 || hits[0].SHA256 != sha {
				t.Errorf("import %d: search finds %+v, want the message %s", i, hits, sha)
			}
		}
		if failed > 0 {
			t.Errorf("%d of 60 imports of one message failed", failed)
		}
	})
}

// checkCorpusPremises checks what the facts rely on and grep cannot show in
// a search result: the quoted-printable word is not in any file as such, and
// the HTML-only message has its word only as entities.
func checkCorpusPremises(t *testing.T, c *corpustest.Corpus) {
	t.Helper()
	for _, f := range c.Folders {
		for _, p := range f.Files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			lower := bytes.ToLower(b)
			if bytes.Contains(lower, []byte("aliyorsunuz")) {
				t.Errorf("corpus premise: %s contains \"aliyorsunuz\" verbatim", p)
			}
			for _, w := range []string{"eletrostática", "eletrost\xe1tica"} {
				if bytes.Contains(lower, []byte(w)) {
					t.Errorf("corpus premise: %s contains %q verbatim", p, w)
				}
			}
		}
	}
	qp, _, _ := c.Find(t, msgQPSoftBreak)
	if !bytes.Contains(c.Raw[qp], []byte("aliyo=\nrsunuz")) {
		t.Errorf("corpus premise: %s should hold \"aliyo=\\nrsunuz\"", qp)
	}
	html, _, _ := c.Find(t, msgHTMLOnly)
	if !bytes.Contains(c.Raw[html], []byte("eletrost&aacute;tica")) {
		t.Errorf("corpus premise: %s should hold \"eletrost&aacute;tica\"", html)
	}
}

// checkAttachmentCounts: has:attachment partitions the archive.
func checkAttachmentCounts(t *testing.T, mv runner, data string, c *corpustest.Corpus) {
	t.Helper()
	with := searchTotal(t, mv, data, "has:attachment")
	without := searchTotal(t, mv, data, "--", "-has:attachment")
	// Python's email package finds 150 messages with a non-text part or a file
	// name; mailvault also counts message/rfc822 parts, so about that many.
	if with < 100 || with > 300 || with+without != c.Distinct {
		t.Errorf("has:attachment %d, -has:attachment %d; want about 150 and together %d", with, without, c.Distinct)
	}
	// Every message found by a file name has an attachment.
	if n := searchTotal(t, mv, data, "filename:signature.ng", "has:attachment"); n != 5 {
		t.Errorf("filename:signature.ng has:attachment: %d, want 5", n)
	}
}

// checkJSONHit checks every field of one --json line against the file.
func checkJSONHit(t *testing.T, mv runner, data string, c *corpustest.Corpus, st map[string]mailboxStatusJSON) {
	t.Helper()
	path, sha, uid := c.Find(t, msgLargest)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hits := searchAll(t, mv, data, "larger:300733")
	if len(hits) != 1 {
		t.Fatalf("larger:300733: %d hits, want 1 (%s)", len(hits), path)
	}
	h := hits[0]
	uv := st["hard-ham-1"].UIDValidity
	wantURL := fmt.Sprintf("mailvault://sa/hard-ham-1;UIDVALIDITY=%d/;UID=%d", uv, uid)
	// From the file: Date: Thu, 11 Jul 2002 11:01:45 -0400; From: and
	// Subject: are ISO-2022-JP encoded words (decoded with Python).
	want := hitJSON{
		Account: "sa", Mailbox: "hard-ham-1", UIDValidity: uv, UID: uid, SHA256: sha,
		Date:    "2002-07-11T11:01:45-04:00",
		From:    "伊東　仁 <hito@opentext.com>",
		Subject: "日本語の件名（サブジェクト）　スパムメールではありません！",
		Size:    int64(len(raw)), Flags: []string{`\Seen`}, URL: wantURL,
	}
	if fmt.Sprintf("%+v", h) != fmt.Sprintf("%+v", want) {
		t.Errorf("search --json:\n got %+v\nwant %+v", h, want)
	}
	if uv == 0 || !strings.HasPrefix(h.URL, "mailvault://sa/") {
		t.Errorf("uidvalidity %d, url %q: want non-zero and mailvault://sa/...", uv, h.URL)
	}
	// Every line has every field, for a larger result too.
	for _, h := range searchAll(t, mv, data, "subject:mortgage") {
		if h.Account != "sa" || h.Mailbox == "" || h.UIDValidity != st[h.Mailbox].UIDValidity || h.UID == 0 ||
			len(h.SHA256) != 64 || h.Date == "" || h.From == "" || h.Subject == "" || h.Size <= 0 ||
			h.URL != fmt.Sprintf("mailvault://sa/%s;UIDVALIDITY=%d/;UID=%d", h.Mailbox, h.UIDValidity, h.UID) {
			t.Errorf("search --json subject:mortgage: incomplete or inconsistent line %+v", h)
		}
	}
}

// testBadInput: bad paths and files are reported, one line each, and never
// stop the rest of an import.
func testBadInput(t *testing.T, mv runner, c *corpustest.Corpus) {
	good := c.Folder(t, "easy-ham-2")
	// Three corpus messages without From_ lines in them, ending in a newline,
	// so that they can be put in an mbox byte-exact.
	fromLine := regexp.MustCompile(`(?m)^>*From `)
	var msgs [][]byte
	var shas []string
	for i, p := range good.Files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(b, []byte("\n")) || fromLine.Match(b) || !bytes.Contains(b, []byte("\n\n")) {
			continue
		}
		msgs = append(msgs, b)
		shas = append(shas, good.SHA[i])
		if len(msgs) == 3 {
			break
		}
	}
	if len(msgs) < 3 {
		t.Fatal("no three plain messages in easy-ham-2")
	}
	newMaildir := func(t *testing.T, dir string) {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range msgs {
			if err := os.WriteFile(filepath.Join(dir, "cur", fmt.Sprintf("100%d.msg:2,S", i)), m, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	inbox := func(t *testing.T, data, mailbox string) []string {
		t.Helper()
		var got []string
		for _, h := range searchAll(t, mv, data, "mailbox:"+mailbox, "larger:0") {
			got = append(got, h.SHA256)
		}
		slices.Sort(got)
		return got
	}
	sorted := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return s
	}

	t.Run("MissingPath", func(t *testing.T) {
		dir := t.TempDir()
		md := filepath.Join(dir, "Maildir")
		newMaildir(t, md)
		missing := filepath.Join(dir, "no", "such", "mail")
		data := filepath.Join(dir, "data")
		r := mv(t, "import", "--data", data, "--account", "t", "--json", missing, md)
		if r.code != 1 {
			t.Errorf("import of a missing and a good path: exit %d, want 1", r.code)
		}
		if n := countLines(r.stderr, missing); n != 1 {
			t.Errorf("stderr names %s on %d lines, want 1:\n%s", missing, n, r.stderr)
		}
		sum := parseImportSummary(t, r)
		if sum.stored != 3 || sum.fileErrors != 1 {
			t.Errorf("summary %+v: want stored 3, file_errors 1; stderr:\n%s", sum, r.stderr)
		}
		if got := inbox(t, data, "INBOX"); !slices.Equal(got, sorted(shas)) {
			t.Errorf("INBOX holds %v, want %v", got, sorted(shas))
		}
	})

	t.Run("NotMailInCur", func(t *testing.T) {
		dir := t.TempDir()
		md := filepath.Join(dir, "Maildir")
		newMaildir(t, md)
		png := filepath.Join(md, "cur", "1001x.png:2,S") // sorts between the messages
		if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, "data")
		r := mv(t, "import", "--data", data, "--account", "t", "--json", md)
		if r.code != 1 {
			t.Errorf("import with a PNG in cur/: exit %d, want 1 (a file could not be imported)", r.code)
		}
		if n := countLines(r.stderr, png); n != 1 {
			t.Errorf("stderr names %s on %d lines, want 1:\n%s", png, n, r.stderr)
		}
		sum := parseImportSummary(t, r)
		if sum.stored != 3 || sum.fileErrors != 1 {
			t.Errorf("summary %+v: want stored 3, file_errors 1; stderr:\n%s", sum, r.stderr)
		}
		if got := inbox(t, data, "INBOX"); !slices.Equal(got, sorted(shas)) {
			t.Errorf("INBOX holds %v, want %v", got, sorted(shas))
		}
	})

	t.Run("TruncatedMbox", func(t *testing.T) {
		// mboxrd of the three messages (none has a From_ line to quote), cut
		// in the middle of a body line of the third.
		var mbox bytes.Buffer
		var offsets []int
		for _, m := range msgs {
			offsets = append(offsets, mbox.Len())
			mbox.WriteString("From sender@example.org Mon Jul  1 12:00:00 2002\n")
			mbox.Write(m)
			mbox.WriteString("\n")
		}
		third := offsets[2] + len("From sender@example.org Mon Jul  1 12:00:00 2002\n")
		bodyStart := third + bytes.Index(msgs[2], []byte("\n\n")) + 2
		cut := bodyStart + (mbox.Len()-bodyStart)/2
		for mbox.Bytes()[cut-1] == '\n' || mbox.Bytes()[cut] == '\n' {
			cut++
		}
		truncated := mbox.Bytes()[third:cut]
		dir := t.TempDir()
		path := filepath.Join(dir, "cut.mbox")
		if err := os.WriteFile(path, mbox.Bytes()[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, "data")
		r := mv(t, "import", "--data", data, "--account", "t", "--json", path)
		if r.code != 0 {
			t.Errorf("import of a truncated mbox: exit %d, stderr %q; want 0 (the cut message is kept, with a note)", r.code, r.stderr)
		}
		// The cut message is kept byte-exact and reported by file and offset.
		where := fmt.Sprintf("%s:offset %d", path, offsets[2])
		if n := countLines(r.stderr, where); n != 1 || !strings.Contains(r.stderr, "truncated") {
			t.Errorf("stderr %q: want one line naming %q and saying truncated", r.stderr, where)
		}
		if countLines(r.stderr, path) != 1 {
			t.Errorf("stderr %q: only the cut message should be reported", r.stderr)
		}
		sum := parseImportSummary(t, r)
		if sum.stored != 3 || sum.fileErrors != 0 {
			t.Errorf("summary %+v: want stored 3 (2 complete + the cut one), file_errors 0; stderr:\n%s", sum, r.stderr)
		}
		var want []string
		for i, h := range searchAll(t, mv, data, "mailbox:cut", "larger:0") {
			_ = i
			want = append(want, h.SHA256)
		}
		slices.Sort(want)
		exp := sorted(append(slices.Clone(shas[:2]), shaHex(truncated)))
		if !slices.Equal(want, exp) {
			t.Errorf("mailbox cut holds %v, want the two complete messages and the cut one, byte-exact: %v", want, exp)
		}
	})
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// checkCorpusExport exports the whole corpus as a production (one document
// per unique message) and verifies it offline, then alters one native and
// wants verification to fail.
func checkCorpusExport(t *testing.T, mv runner, data string, c *corpustest.Corpus) {
	t.Helper()
	begin := time.Now()
	out := filepath.Join(t.TempDir(), "production")
	r := mv(t, "export", "--data", data, "--out", out, "--dedup", "global", "--json", "larger:0")
	if r.code != 0 {
		t.Fatalf("export of the corpus: exit %d: %s", r.code, r.stderr)
	}
	var res service.ExportResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Manifest == nil {
		t.Fatalf("export --json: %v: %s", err, r.stdout)
	}
	if n := res.Manifest.Counts.Messages; n != c.Distinct {
		t.Errorf("the corpus export holds %d messages, want %d (distinct)", n, c.Distinct)
	}
	t.Logf("corpus export: %+v in %s", res.Manifest.Counts, time.Since(begin).Round(time.Millisecond))
	if r := mv(t, "export", "verify", out); r.code != 0 {
		t.Fatalf("export verify: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	natives, _ := filepath.Glob(filepath.Join(out, "NATIVES", "*", "*.eml"))
	if len(natives) < c.Distinct {
		t.Fatalf("%d native messages, want at least %d", len(natives), c.Distinct)
	}
	// Documents are spread over folders of 1,000: the first holds exactly
	// that many natives and texts, and the next folder exists.
	for _, top := range []string{"NATIVES", "TEXT"} {
		first, _ := os.ReadDir(filepath.Join(out, top, "0001"))
		if len(first) != 1000 {
			t.Errorf("%s/0001 holds %d files, want 1000", top, len(first))
		}
		if _, err := os.Stat(filepath.Join(out, top, "0002")); err != nil {
			t.Errorf("%s/0002: %v", top, err)
		}
	}
	b, err := os.ReadFile(natives[len(natives)/2])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	os.WriteFile(natives[len(natives)/2], b, 0o600)
	if r := mv(t, "export", "verify", out); r.code != 1 || !strings.Contains(r.stdout, filepath.Base(natives[len(natives)/2])) {
		t.Errorf("verify of an altered export: exit %d: %s", r.code, r.stdout)
	}
}
