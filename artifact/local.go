// Package artifact keeps build artifacts by content: a directory of files
// named by their sha256, each verified again when it is read. It must not
// know about releases or environments: it stores bytes.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry"
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

func (l *Local) path(digest string) (string, error) {
	hexsum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexsum) != 64 {
		return "", gantry.Errorf(gantry.EINVALID, "artifact digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexsum); err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "artifact digest %q: not hexadecimal", digest)
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
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	dst, _ := l.path(digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, err
	}
	return digest, n, nil
}

// Has reports whether the digest is stored.
func (l *Local) Has(ctx context.Context, digest string) (bool, error) {
	p, err := l.path(digest)
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
func (l *Local) Open(ctx context.Context, digest string) (io.ReadCloser, error) {
	p, err := l.path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "artifact %s not found", digest)
	} else if err != nil {
		return nil, err
	}
	return &verifyingReader{f: f, h: sha256.New(), want: digest}, nil
}

type verifyingReader struct {
	f    *os.File
	h    hash.Hash
	want string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, gantry.Errorf(gantry.EINTERNAL, "artifact %s is corrupt: content hashes to %s", v.want, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }
