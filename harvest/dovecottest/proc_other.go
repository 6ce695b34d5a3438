//go:build unix && !linux

package dovecottest

import "syscall"

// sysProcAttr puts the master in its own process group so Stop can reach
// every child.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether any process (zombies included) is in group pgid.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
