package store

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// readFile reads the file of k's blob.
//
// Decision: through a descriptor of the store's directory held open
// (openat of "ab/<hash>.zst") and plain system calls, not os.ReadFile of
// the whole path. A read of mail is small and frequent (the IMAP view
// answers mbsync one message per command): os.ReadFile spends six system
// calls on it (open, epoll registration, which fails for a regular file,
// fstat, two reads, close) and walks every component of the path; this
// spends four (openat, fstat, read, close) and walks two. The blobs are
// never rewritten in place (a new one is renamed over, the same content),
// so the size fstat gives is the size to read. Where the directory cannot
// be held, and on other systems (read_other.go), os.ReadFile is used.
func (s *Store) readFile(k Key) ([]byte, error) {
	s.dirFD.once.Do(func() {
		fd, err := syscall.Open(s.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == nil {
			s.dirFD.fd = fd
		}
	})
	if s.dirFD.fd <= 0 {
		return os.ReadFile(s.Path(k))
	}
	h := k.String()
	rel := h[0:2] + "/" + h + ".zst"
	fd, err := openat(s.dirFD.fd, rel)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: s.Path(k), Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: s.Path(k), Err: err}
	}
	if st.Size < 0 || st.Size > maxBlobFile {
		return nil, &fs.PathError{Op: "read", Path: s.Path(k), Err: fmt.Errorf("%d bytes", st.Size)}
	}
	b := make([]byte, st.Size)
	for n := 0; n < len(b); {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: s.Path(k), Err: err}
		}
		if m == 0 {
			return nil, &fs.PathError{Op: "read", Path: s.Path(k), Err: io.ErrUnexpectedEOF}
		}
		n += m
	}
	return b, nil
}

// maxBlobFile bounds a blob file read whole (a compressed message; the
// largest message the archive takes is far below it).
const maxBlobFile = 4 << 30

func openat(dirfd int, rel string) (int, error) {
	for {
		fd, err := syscall.Openat(dirfd, rel, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

func (s *Store) closeDir() {
	if s.dirFD.fd > 0 {
		syscall.Close(s.dirFD.fd)
		s.dirFD.fd = -1 // a number the system may reuse: reads go by path now
	}
}
