package web

import (
	"net"
	osuser "os/user"
	"strconv"
	"syscall"
)

// peerUser is the OS user of the process at the other end of a local
// socket connection, from the kernel (SO_PEERCRED): the audit trail names
// the operator by it ("operator:alice"), not by the user serve runs as.
// "" when c is no Unix socket or the kernel does not say.
func peerUser(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return ""
	}
	uid := strconv.FormatUint(uint64(cred.Uid), 10)
	if u, err := osuser.LookupId(uid); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid" + uid
}
