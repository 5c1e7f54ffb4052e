package ui

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// TokenFile is the name, in the state dir, of the file holding the bearer
// token that the page's mutating endpoints require.
const TokenFile = "ui-token"

// minTokenLen refuses tokens short enough to guess.
const minTokenLen = 16

// LoadOrCreateToken reads the bearer token from <stateDir>/ui-token,
// creating the file (0600, 32 random bytes in hex) when it is missing. It
// refuses a file that others could read or write, that is not a regular
// file (a symlink could point anywhere), that another user owns, or whose
// token is too short: whoever can read the token can converge guests.
func LoadOrCreateToken(stateDir string) (token, path string, err error) {
	path = filepath.Join(stateDir, TokenFile)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createToken(path)
	}
	if err != nil {
		return "", path, fmt.Errorf("ui token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", path, fmt.Errorf("ui token %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", path, fmt.Errorf("ui token %s: mode %04o lets others read or change it; want 0600 (chmod 600 %s)", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return "", path, fmt.Errorf("ui token %s: owned by uid %d, not by this user (uid %d)", path, st.Uid, os.Geteuid())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", path, fmt.Errorf("ui token: %w", err)
	}
	token = strings.TrimSpace(string(data))
	if len(token) < minTokenLen || strings.ContainsAny(token, " \t\r\n") {
		return "", path, fmt.Errorf("ui token %s: want one word of at least %d characters (delete the file to get a new random one)", path, minTokenLen)
	}
	return token, path, nil
}

func createToken(path string) (string, string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", path, fmt.Errorf("ui token: %w", err)
	}
	token := hex.EncodeToString(buf)
	if err := fsutil.MkdirPrivate(filepath.Dir(path)); err != nil {
		return "", path, fmt.Errorf("ui token: %w", err)
	}
	// O_EXCL: never write through a file (or symlink) that appeared since
	// the Lstat.
	f, err := fsutil.OpenNoFollow(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", path, fmt.Errorf("ui token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", path, fmt.Errorf("ui token %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", path, fmt.Errorf("ui token %s: %w", path, err)
	}
	return token, path, nil
}
