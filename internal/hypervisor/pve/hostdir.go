package pve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnsureDir creates a bind mount's host folder when it is missing, owned
// by uid:gid (host IDs), as the old tool did before pct set mpN. An
// existing folder is left as it is. phoenix runs as root and the path's
// parents may be shared with containers (another guest's bind mount), so
// the walk refuses any component that is a symbolic link or not a folder,
// and only the folder itself, when it made it, is chowned.
func (h *Host) EnsureDir(ctx context.Context, path string, uid, gid int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || path == "/" {
		return fmt.Errorf("host folder %q: want an absolute, clean path", path)
	}
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("host folder %s: %w", path, err)
			}
			if st, err = os.Lstat(cur); err != nil {
				return fmt.Errorf("host folder %s: %w", path, err)
			}
			if !st.IsDir() {
				return fmt.Errorf("host folder %s: %s changed under us", path, cur)
			}
			if cur != path {
				continue // a parent: root's, like the ones that were there
			}
			if err := os.Lchown(cur, uid, gid); err != nil {
				return fmt.Errorf("host folder %s: chown %d:%d %s: %w", path, uid, gid, cur, err)
			}
		case err != nil:
			return fmt.Errorf("host folder %s: %w", path, err)
		case st.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("host folder %s: %s is a symbolic link; refusing to follow it as root", path, cur)
		case !st.IsDir():
			return fmt.Errorf("host folder %s: %s is not a folder", path, cur)
		}
	}
	return nil
}
