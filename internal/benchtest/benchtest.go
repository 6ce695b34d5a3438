// Package benchtest is the report writer of mailvault's benchmarks: the
// TestBench* tests behind the "bench" build tag in harvest, indexer and web
// (go test -tags bench -run TestBench... ./harvest/; scripts/bench-*.sh and
// docs/benchmarks.md say which). It is imported by those tests only.
package benchtest

import (
	"fmt"
	"os"
	"testing"
)

// Mdf prints a line of the Markdown report to stdout and, when
// $MAILVAULT_BENCH_REPORT is set, appends it to that file (the bench
// scripts collect the tables there, apart from go test's output).
func Mdf(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...) + "\n"
	os.Stdout.WriteString(line)
	if path := os.Getenv("MAILVAULT_BENCH_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("report: %v", err)
		}
		defer f.Close()
		if _, err := f.WriteString(line); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
}
