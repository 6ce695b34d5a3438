//go:build linux

package chroottest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Marker is the file scripts/server-roots.sh writes last into a complete root.
const marker = ".mailvault-root"

// rootDir returns the root of kind ("cyrus", "courier") when it is complete,
// or why not.
func rootDir(kind string) (string, error) {
	base := os.Getenv("MAILVAULT_SERVER_ROOTS")
	if base == "" {
		base = "/var/cache/mailvault/roots"
	}
	dir := filepath.Join(base, kind)
	if os.Geteuid() != 0 {
		return "", errors.New("needs root (chroot)")
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return "", fmt.Errorf("no complete %s root at %s (%v)", kind, dir, err)
	}
	return dir, nil
}

// need returns the root of kind, or skips t; under CI=true it fails t
// instead, so that CI cannot go green by skipping.
func need(t testing.TB, kind string) string {
	t.Helper()
	dir, err := rootDir(kind)
	if err == nil {
		return dir
	}
	msg := fmt.Sprintf("chroottest: %v: run `sudo scripts/server-roots.sh %s`", err, kind)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// lockRoot takes the root's lock for the life of one server: the packages'
// own paths (/etc/courier, the authdaemon socket, /etc/sasldb2) are shared
// by everything in the root, so two servers of one kind run one after
// the other, whether in one test binary or in two. The lock is a flock: it
// goes with the process, so a killed test leaves no stale lock.
func lockRoot(root string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(root, ".mailvault-lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock root: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock root %s: %w", root, err)
	}
	return f, nil
}

// killInRoot SIGKILLs every process whose root directory is root and waits
// until they are gone: what a test killed before its cleanup left behind
// (Pdeathsig reaches the master, not always its daemonised helpers). It
// returns how many it found.
func killInRoot(root string) int {
	found := 0
	for round := 0; round < 100; round++ {
		pids := pidsInRoot(root)
		if len(pids) == 0 {
			return found
		}
		if round == 0 {
			found = len(pids)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return found
}

// pidsInRoot lists the live (not zombie) processes chrooted into root.
func pidsInRoot(root string) []int {
	want, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		r, err := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if err != nil || r != want {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := bytes.Fields(b[i+1:]); len(f) > 0 && string(f[0]) == "Z" {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// command is name (a path inside root) run chrooted into root, with a
// clean environment.
func command(root string, env []string, name string, args ...string) *exec.Cmd {
	cmd := &exec.Cmd{
		Path: name,
		Args: append([]string{name}, args...),
		Dir:  "/",
		Env:  append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, env...),
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:    root,
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	return cmd
}

// runIn runs a command in root to completion and returns its stdout.
func runIn(root string, stdin string, name string, args ...string) (string, error) {
	cmd := command(root, nil, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()+" "+stdout.String()))
	}
	return stdout.String(), nil
}

// lookupIDs reads a user's uid and gid from root's /etc/passwd.
func lookupIDs(root, name string) (uid, gid int, err error) {
	f, err := os.Open(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && fields[0] == name {
			uid, err1 := strconv.Atoi(fields[2])
			gid, err2 := strconv.Atoi(fields[3])
			if err1 != nil || err2 != nil {
				return 0, 0, fmt.Errorf("bad passwd line for %s", name)
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("no user %s in %s/etc/passwd", name, root)
}

// chownTree gives dir and everything below it to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}
