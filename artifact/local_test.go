package artifact_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
)

func mustStore(t *testing.T) *artifact.Local {
	t.Helper()
	s, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutOpen(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	digest, size, err := s.Put(ctx, strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	// sha256("hello")
	if want := "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; digest != want || size != 5 {
		t.Fatalf("Put = %s, %d; want %s, 5", digest, size, want)
	}
	again, _, err := s.Put(ctx, strings.NewReader("hello"))
	if err != nil || again != digest {
		t.Fatalf("second Put = %s, %v; want the same digest", again, err)
	}
	if ok, err := s.Has(ctx, digest); !ok || err != nil {
		t.Fatalf("Has = %v, %v", ok, err)
	}
	r, err := s.Open(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v; want hello", got, err)
	}
}

func TestOpenDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	digest, _, err := s.Put(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 100_000)))
	if err != nil {
		t.Fatal(err)
	}
	hexsum := strings.TrimPrefix(digest, "sha256:")
	path := filepath.Join(s.Dir, "sha256", hexsum[:2], hexsum)
	if err := os.WriteFile(path, bytes.Repeat([]byte("y"), 100_000), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("reading a corrupted artifact: err = %v, want corrupt", err)
	}
}

func TestBadDigests(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	for _, d := range []string{"", "md5:abc", "sha256:abc", "sha256:" + strings.Repeat("g", 64), "sha256:../../../../etc/passwd"} {
		if _, err := s.Open(ctx, d); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("Open(%q) = %v, want invalid", d, err)
		}
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	if _, err := s.Open(ctx, missing); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Open(missing) = %v, want not found", err)
	}
	if ok, err := s.Has(ctx, missing); ok || err != nil {
		t.Errorf("Has(missing) = %v, %v", ok, err)
	}
}
