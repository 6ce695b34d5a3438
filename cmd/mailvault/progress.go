package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress prints "what: done/total (rate/s, ETA)" on one terminal line,
// redrawn at most a few times a second. It prints nothing when out is not a
// terminal, so scripts and logs get only the final summary.
type progress struct {
	out   io.Writer
	what  string
	start time.Time
	tty   bool

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func newProgress(out io.Writer, what string) *progress {
	return &progress{out: out, what: what, start: time.Now(), tty: isTerminal(out)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update redraws the line if enough time has passed since the last draw.
func (p *progress) update(done, total int) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond && done != total {
		return
	}
	p.last = now
	p.drawn = true
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(p.out, "\r\033[K%s: %d/%d (%.0f%%) %.0f msg/s, ETA %s", p.what, done, total, pct, rate, eta)
}

// done clears the progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.out, "\r\033[K")
		p.drawn = false
	}
}
