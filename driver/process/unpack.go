package process

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// unpack returns the directory holding the artifact's files, extracting it
// on first use. A release directory is only ever created by a rename of a
// fully extracted and verified temporary directory, so its existence means
// it is complete, even after a crash mid-extraction.
func (d *Driver) unpack(ctx context.Context, digest string) (string, error) {
	hexsum, ok := strings.CutPrefix(digest, "sha256:")
	if _, err := hex.DecodeString(hexsum); !ok || err != nil || len(hexsum) != 64 {
		return "", gantry.Errorf(gantry.EINVALID, "artifact digest %q: want sha256:<64 hex digits>", digest)
	}
	final := filepath.Join(d.Dir, "releases", hexsum)
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	// One extraction at a time: two instances of a new release would
	// otherwise both unpack it.
	d.unpackMu.Lock()
	defer d.unpackMu.Unlock()
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	if d.Artifacts == nil {
		return "", fmt.Errorf("unpack artifact %s: driver has no artifact store", digest)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".unpack-"+hexsum[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	if err := extract(ctx, d.Artifacts, digest, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		// Another driver over the same Dir may have won the race.
		if fi, serr := os.Stat(final); serr == nil && fi.IsDir() {
			return final, nil
		}
		return "", fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	return final, nil
}

func extract(ctx context.Context, store gantry.ArtifactStore, digest, dir string) error {
	rc, err := store.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tarball.Extract(rc, dir); err != nil {
		return fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	// The store checks the digest when its reader reaches EOF: read to the
	// end so a corrupted artifact is refused, not run.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	return nil
}
