// Package digest checks artifact digests ("sha256:<64 hex digits>") for the
// artifact stores: the form of a digest, and the bytes read back against
// it. It must not store anything.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Parse returns the hexadecimal sum of a digest, or EINVALID saying what is
// wrong with it.
func Parse(digest string) (string, error) {
	hexsum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexsum) != 64 {
		return "", gantry.Errorf(gantry.EINVALID, "artifact digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexsum); err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "artifact digest %q: not hexadecimal", digest)
	}
	return hexsum, nil
}

// Of returns the digest of what h has summed.
func Of(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// Verifying returns a reader of rc that fails at EOF when what was read
// does not hash to want: a corrupted artifact is never deployed.
func Verifying(rc io.ReadCloser, want string) io.ReadCloser {
	return &verifyingReader{rc: rc, h: sha256.New(), want: want}
}

type verifyingReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := Of(v.h); got != v.want {
			return n, gantry.Errorf(gantry.EINTERNAL, "artifact %s is corrupt: content hashes to %s", v.want, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }
