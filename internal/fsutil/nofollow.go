package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The state dir is written by root. A symlink planted in it (by whoever
// could write there, or left from an earlier owner) would make phoenix
// create or truncate the file it points at, so every file phoenix opens
// there is opened with O_NOFOLLOW, and the folder itself is checked first.

// ErrUnsafe marks a state dir, or a file in it, that phoenix refuses to
// use; errors.Is finds it in the errors below.
var ErrUnsafe = errors.New("unsafe path in the state dir")

// unsafeError is a refusal whose message says it all.
type unsafeError string

func (e unsafeError) Error() string        { return string(e) }
func (e unsafeError) Is(target error) bool { return target == ErrUnsafe }

func unsafe(format string, args ...any) error { return unsafeError(fmt.Sprintf(format, args...)) }

// OpenNoFollow is os.OpenFile refusing a symlink as the last element.
//
// The file is opened with open(2) and wrapped with os.NewFile: os.OpenFile
// offers every file it opens to the poller, which for a regular file costs
// four fcntl calls and a failed epoll_ctl, as many system calls as the
// write of a status file itself.
func OpenNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, unsafe("%s is a symlink; refusing to follow it", path)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// CreateTemp is os.CreateTemp opened as OpenNoFollow opens: a new file
// (0600, created exclusively) in dir, named pattern with its last "*"
// replaced by a random number.
func CreateTemp(dir, pattern string) (*os.File, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		f, err := OpenNoFollow(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return f, err
	}
}

// ReadFileNoFollow is os.ReadFile refusing a symlink, and anything but a
// regular file, as the last element.
func ReadFileNoFollow(path string) ([]byte, error) {
	f, _, err := openRegular(OpenNoFollow, path, ", refused in the state dir")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// CheckDir refuses a folder phoenix would write in as root when another
// user could turn it against phoenix: a symlink, a folder owned by someone
// else, or one that group or others may write. A missing folder is not an
// error (callers that write create it with MkdirPrivate).
func CheckDir(dir string) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkInfo(dir, st)
}

func checkInfo(dir string, st os.FileInfo) error {
	if st.Mode()&os.ModeSymlink != 0 {
		return unsafe("state dir %s is a symlink; give its real path", dir)
	}
	if !st.IsDir() {
		return unsafe("state dir %s is not a folder", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return unsafe("state dir %s is owned by uid %d, not by this user (uid %d)", dir, sys.Uid, os.Geteuid())
	}
	if st.Mode().Perm()&0o022 != 0 {
		return unsafe("state dir %s is writable by group or others (mode %04o); chmod go-w it", dir, st.Mode().Perm())
	}
	return nil
}

// MkdirPrivate creates dir (0700) and its parents when missing, and then
// checks it as CheckDir does; a folder under dir is created with Mkdir
// and checked the same way.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return CheckDir(dir)
}

// SubdirPrivate creates (0700) and checks one folder inside a checked
// state dir.
func SubdirPrivate(parent, name string) (string, error) {
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	return dir, checkInfo(dir, st)
}
