// Package artifact keeps build artifacts by content: a directory of files
// named by their sha256, each verified again when it is read. It must not
// know about releases or environments: it stores bytes.
package artifact

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/digest"
)

var _ gantry.ArtifactStore = (*Local)(nil)

// Local is an ArtifactStore on a local directory.
type Local struct {
	Dir string
}

// NewLocal returns a store on dir, creating it.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	return &Local{Dir: dir}, nil
}

func (l *Local) path(d string) (string, error) {
	hexsum, err := digest.Parse(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.Dir, "sha256", hexsum[:2], hexsum), nil
}

// Put stores r's bytes and returns their digest. Storing the same bytes twice
// keeps one file.
func (l *Local) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(l.Dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, err
	}
	sum := digest.Of(h)
	dst, _ := l.path(sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, err
	}
	return sum, n, nil
}

// Has reports whether the digest is stored.
func (l *Local) Has(ctx context.Context, d string) (bool, error) {
	p, err := l.path(d)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Open returns the artifact's bytes. The reader verifies the digest as it is
// read and fails at EOF if the stored bytes no longer match it.
func (l *Local) Open(ctx context.Context, d string) (io.ReadCloser, error) {
	p, err := l.path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "artifact %s not found", d)
	} else if err != nil {
		return nil, err
	}
	return digest.Verifying(f, d), nil
}

// List returns the digests of every artifact stored, in order.
func (l *Local) List() ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(l.Dir, "sha256", "*", "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		d := "sha256:" + filepath.Base(p)
		if _, err := digest.Parse(d); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}
