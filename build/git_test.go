package build

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// resolveRepo has a main branch, a feature branch, tags (light and
// annotated) on the first commit, and a branch known only as a
// remote-tracking branch.
func resolveRepo(t *testing.T) (r *testRepo, first, second, feature, remoteOnly string) {
	t.Helper()
	r = MustRepo(t)
	first = r.Commit("one", map[string]string{"a.txt": "1"})
	r.Git("tag", "v1.0.0")
	r.Git("tag", "-a", "-m", "annotated", "16.03.1")
	second = r.Commit("two", map[string]string{"a.txt": "2"})
	r.Git("checkout", "--quiet", "-b", "feature/x")
	feature = r.Commit("three", map[string]string{"b.txt": "3"})
	r.Git("checkout", "--quiet", "-b", "pushed")
	remoteOnly = r.Commit("four", map[string]string{"c.txt": "4"})
	// Make "pushed" exist only as origin/pushed, as after a fetch.
	r.Git("update-ref", "refs/remotes/origin/pushed", remoteOnly)
	r.Git("checkout", "--quiet", "main")
	r.Git("branch", "-D", "pushed")
	return r, first, second, feature, remoteOnly
}

func TestResolve(t *testing.T) {
	r, first, second, feature, remoteOnly := resolveRepo(t)
	tests := []struct {
		ref  string
		want string
	}{
		{"", second},
		{"HEAD", second},
		{"main", second},
		{"feature/x", feature},
		{"v1.0.0", first},
		{"16.03.1", first}, // annotated: peeled to the commit
		{first, first},
		{first[:10], first},
		{"main~1", first},
		{"pushed", remoteOnly}, // falls back to origin/pushed
		{"origin/pushed", remoteOnly},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := Resolve(context.Background(), r.Dir, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %s, want %s", tt.ref, got, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	r, _, _, _, _ := resolveRepo(t)
	tests := []struct {
		name, repo, ref string
		code            string
		contains        []string
	}{
		{"missing ref", r.Dir, "no-such-branch", gantry.ENOTFOUND, []string{`"no-such-branch"`, "origin/no-such-branch"}},
		{"missing sha", r.Dir, strings.Repeat("ab", 20), gantry.ENOTFOUND, []string{strings.Repeat("ab", 20)}},
		{"option as ref", r.Dir, "--output=/tmp/x", gantry.EINVALID, []string{"--output"}},
		{"missing repo", filepath.Join(t.TempDir(), "nope"), "main", gantry.ENOTFOUND, []string{"nope"}},
		{"not a repo", t.TempDir(), "main", gantry.EINVALID, []string{"not a git repository"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), tt.repo, tt.ref)
			wantCode(t, err, tt.code)
			for _, s := range tt.contains {
				if msg := gantry.ErrorMessage(err); !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %q", msg, s)
				}
			}
		})
	}
}

// TestResolveRemote resolves through a file:// URL, which exercises the
// remote code paths (ls-remote, and the mirror of Builder.Resolve) without a
// network.
func TestResolveRemote(t *testing.T) {
	r, first, second, feature, _ := resolveRepo(t)
	url := "file://" + r.Dir
	b := MustBuilder(t)
	tests := []struct {
		ref, want string
	}{
		{"main", second},
		{"feature/x", feature},
		{"v1.0.0", first},
		{"16.03.1", first},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := Resolve(context.Background(), url, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %s, want %s", tt.ref, got, tt.want)
			}
			got, err = b.Resolve(context.Background(), url, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Builder.Resolve(%q) = %s, want %s", tt.ref, got, tt.want)
			}
		})
	}
	if _, err := Resolve(context.Background(), url, "nope"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Resolve(nope) error = %v, want ENOTFOUND", err)
	}
	if _, err := b.Resolve(context.Background(), url, "nope"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Builder.Resolve(nope) error = %v, want ENOTFOUND", err)
	}

	// A new commit upstream is seen: the mirror is fetched again.
	newer := r.Commit("five", map[string]string{"d.txt": "5"})
	got, err := b.Resolve(context.Background(), url, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got != newer {
		t.Errorf("after a new commit, Builder.Resolve(main) = %s, want %s", got, newer)
	}
}

func TestIsRemote(t *testing.T) {
	tests := map[string]bool{
		"/srv/git/shop":                 false,
		"./shop":                        false,
		"shop":                          false,
		"https://git.example/shop.git":  true,
		"file:///srv/git/shop":          true,
		"git@github.com:acme/shop.git":  true,
		"ssh://git@host:22/acme/shop":   true,
		"/srv/weird:name/with@sign:too": false,
	}
	for repo, want := range tests {
		if got := isRemote(repo); got != want {
			t.Errorf("isRemote(%q) = %v, want %v", repo, got, want)
		}
	}
}
