package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestCheckRepo: what an app may be registered with. Repositories, bare or
// not, local or by URL, pass; anything else is EINVALID naming the path
// and what is wrong with it.
func TestCheckRepo(t *testing.T) {
	r := MustRepo(t)
	r.Commit("one", map[string]string{"sub/a.txt": "a"})
	bare := filepath.Join(t.TempDir(), "bare.git")
	r.Git("clone", "--quiet", "--bare", r.Dir, bare)
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	b := MustBuilder(t)
	for _, tt := range []struct {
		repo, want string // want: "" passes, else a part of the EINVALID message
	}{
		{r.Dir, ""},
		{bare, ""},
		{"file://" + bare, ""},
		{"/nonexistent", "/nonexistent does not exist on the server"},
		{file, file + " is a file, not a git repository"},
		{plain, plain + " is not a git repository"},
		{filepath.Join(r.Dir, "sub"), "is the directory sub/ inside a git repository, not a repository of its own; give " + r.Dir},
		{filepath.Join(bare, "refs"), "is inside the git directory " + bare},
		{"relative/path", "a local repository is an absolute path"},
		{"--upload-pack=touch /tmp/x", "is not a path or URL git accepts"},
		{"file://" + plain, "cannot be read by the server"},
	} {
		err := b.CheckRepo(context.Background(), tt.repo)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckRepo(%s): %v, want nil", tt.repo, err)
			}
			continue
		}
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), tt.want) {
			t.Errorf("CheckRepo(%s) = %v, want EINVALID with %q", tt.repo, err, tt.want)
		}
	}
}
