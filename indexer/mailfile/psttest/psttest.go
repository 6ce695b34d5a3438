// Package psttest finds real PST files for the PST import tests: the test
// data that github.com/mooijtech/go-pst/v6 v6.0.2 ships in its module zip
// (data/support.pst: 17 messages in "Sent Messages" and "Drafts";
// data/enron.pst: 1,732 messages of the Enron corpus; data/32-bit.pst: a
// calendar item only), fetched through the Go module proxy with
// `go mod download`. The module is not a dependency of mailvault: only its
// files are read. It also finds readpst. Under CI=true a missing file or
// readpst fails the test; elsewhere it skips.
package psttest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module is the Go module whose zip holds the PST files.
const Module = "github.com/mooijtech/go-pst/v6@v6.0.2"

// File returns the path of data/name in Module's zip.
func File(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", Module).Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	p := filepath.Join(info.Dir, "data", name)
	if err == nil && info.Dir != "" {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	missing(t, "PST test file "+name+" from "+Module+" (go mod download): "+errString(err, info.Error))
	return ""
}

// Readpst fails (under CI=true) or skips the test when readpst is missing.
func Readpst(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("readpst"); err != nil {
		missing(t, "readpst (Debian package pst-utils)")
	}
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true: .ci/run installs pst-utils; the module proxy must be reachable)", what)
	}
	t.Skipf("%s is missing", what)
}

func errString(err error, s string) string {
	if s != "" {
		return s
	}
	if err != nil {
		return err.Error()
	}
	return "not found"
}
