package storetest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
)

// RunArtifacts runs the suite of gantry.ArtifactStore against s: the local
// directory (artifact/) and the one kept in PostgreSQL for several servers.
// corrupt replaces the stored bytes of digest with others of the same
// length, as a disk or a hand might.
func RunArtifacts(t *testing.T, s gantry.ArtifactStore, corrupt func(t *testing.T, digest string)) {
	ctx := context.Background()
	t.Run("PutOpen", func(t *testing.T) {
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
		if got := mustRead(t, s, digest); string(got) != "hello" {
			t.Fatalf("read %q; want hello", got)
		}
	})
	t.Run("Large", func(t *testing.T) {
		// Larger than any chunk a store may split it into, and not a
		// multiple of one.
		data := bytes.Repeat([]byte("0123456789abcdef"), 300_001)
		digest, size, err := s.Put(ctx, bytes.NewReader(data))
		if err != nil || size != int64(len(data)) {
			t.Fatalf("Put = %d, %v; want %d", size, err, len(data))
		}
		if got := mustRead(t, s, digest); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, not the %d put", len(got), len(data))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		digest, size, err := s.Put(ctx, strings.NewReader(""))
		if err != nil || size != 0 {
			t.Fatalf("Put(empty) = %d, %v", size, err)
		}
		if got := mustRead(t, s, digest); len(got) != 0 {
			t.Fatalf("read %q, want nothing", got)
		}
	})
	t.Run("ConcurrentPuts", func(t *testing.T) {
		// Two servers building the same artifact at once keep one copy.
		data := bytes.Repeat([]byte("same"), 500_000)
		var wg sync.WaitGroup
		digests := make([]string, 4)
		errs := make([]error, 4)
		for i := range digests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				digests[i], _, errs[i] = s.Put(ctx, bytes.NewReader(data))
			}()
		}
		wg.Wait()
		for i := range digests {
			if errs[i] != nil || digests[i] != digests[0] {
				t.Fatalf("concurrent Put %d = %s, %v; want %s", i, digests[i], errs[i], digests[0])
			}
		}
		if got := mustRead(t, s, digests[0]); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, not the %d put", len(got), len(data))
		}
	})
	t.Run("DetectsCorruption", func(t *testing.T) {
		digest, _, err := s.Put(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 100_000)))
		if err != nil {
			t.Fatal(err)
		}
		corrupt(t, digest)
		r, err := s.Open(ctx, digest)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("reading a corrupted artifact: err = %v, want corrupt", err)
		}
	})
	t.Run("BadDigests", func(t *testing.T) {
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
	})
}

func mustRead(t *testing.T, s gantry.ArtifactStore, digest string) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", digest, err)
	}
	return b
}
