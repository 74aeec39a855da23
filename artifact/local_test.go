package artifact_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/internal/storetest"
)

func mustStore(t *testing.T) *artifact.Local {
	t.Helper()
	s, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLocal runs the artifact stores' shared suite on a directory.
func TestLocal(t *testing.T) {
	s := mustStore(t)
	storetest.RunArtifacts(t, s, func(t *testing.T, digest string) {
		hexsum := strings.TrimPrefix(digest, "sha256:")
		path := filepath.Join(s.Dir, "sha256", hexsum[:2], hexsum)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Repeat([]byte("y"), int(st.Size())), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

func TestList(t *testing.T) {
	s := mustStore(t)
	var want []string
	for _, data := range []string{"b", "a", "c"} {
		d, _, err := s.Put(t.Context(), strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	slices.Sort(want)
	got, err := s.List()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("List = %v, %v; want %v", got, err, want)
	}
}
