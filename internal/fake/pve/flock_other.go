//go:build !unix

package pve

import (
	"errors"
	"os"
)

func flock(path string) (*os.File, error) {
	return nil, errors.New("fakepve needs a unix system")
}
