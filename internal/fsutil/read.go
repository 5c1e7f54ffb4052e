package fsutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
)

// MaxConfigSize bounds a config file: the largest lab phoenix is measured
// with (10,000 guests) is a few MiB, and a bound stops /dev/zero or a
// runaway generator from filling memory.
const MaxConfigSize = 64 << 20

// ErrNotRegular is returned for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ReadRegular reads a regular file of at most max bytes. The open does not
// block on a FIFO (O_NONBLOCK), the file is checked on the open descriptor
// (no race with a swap of the path), and ctx is checked between chunks, so
// neither a FIFO, a device nor an endless file can hold a caller that was
// told to stop.
func ReadRegular(ctx context.Context, path string, max int64) ([]byte, error) {
	f, st, err := openRegular(os.OpenFile, path, "")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d a config file may have", path, st.Size(), max)
	}
	// Read straight into buf, at most a chunk at a time so that ctx is
	// looked at between them; a file that grows past its size grows buf.
	buf := make([]byte, 0, st.Size()+1)
	const chunk = 1 << 20
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, chunk)
		}
		n, err := f.Read(buf[len(buf):min(cap(buf), len(buf)+chunk)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, fmt.Errorf("%s: grew past the %d bytes a config file may have", path, max)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// openRegular opens path read-only with open, without blocking on a FIFO
// or taking a terminal, and refuses anything but a regular file, checked
// on the descriptor so a swap of the path cannot slip past. why, when set,
// ends the refusal's message.
func openRegular(open func(string, int, os.FileMode) (*os.File, error), path, why string) (*os.File, os.FileInfo, error) {
	f, err := open(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w (%s)%s", path, ErrNotRegular, fileType(st.Mode()), why)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a folder"
	}
	return m.Type().String()
}

// ReadLines reads f from off up to size and hands apply each complete
// line, without its newline, in order, with the offset it starts at. It returns the offset just past the
// last complete line: a last line without its newline (still being
// written, or cut short by a killed writer) is left for the next read. For
// the append-only logs that several processes share.
func ReadLines(f *os.File, off, size int64, apply func(at int64, line []byte)) (int64, error) {
	if size <= off {
		return off, nil
	}
	buf := make([]byte, size-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return off, err
	}
	buf = buf[:n]
	for {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			return off, nil
		}
		apply(off, buf[:nl])
		buf = buf[nl+1:]
		off += int64(nl + 1)
	}
}
