package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestAppAddChecksTheRepository: `gantry app add` with a path that is no
// git repository the server can read exits 2 saying what and where, and
// stores nothing; a bare repository, a work tree and a file:// URL are
// accepted (issue 12, fact 8).
func TestAppAddChecksTheRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	s := openServer(t, t.TempDir())
	file := filepath.Join(t.TempDir(), "README")
	if err := os.WriteFile(file, []byte("not a repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	for _, tt := range []struct{ name, repo, want string }{
		{"ghost", "/nonexistent", "repository /nonexistent does not exist on the server"},
		{"file", file, "repository " + file + " is a file, not a git repository"},
		{"plain", plain, plain + " is not a git repository the server can read"},
		{"url", "file://" + plain, "repository file://" + plain + " cannot be read by the server"},
	} {
		_, errs, code := runCLI(t, s.APIURL, "app", "add", tt.name, "--repo", tt.repo)
		if code != 2 || !strings.Contains(errs, tt.want) {
			t.Errorf("app add %s --repo %s: exit %d %q, want 2 and %q", tt.name, tt.repo, code, errs, tt.want)
		}
	}
	repo := emptyRepo(t)
	bare := filepath.Join(t.TempDir(), "bare.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", bare).CombinedOutput(); err != nil {
		t.Fatalf("git init --bare: %v\n%s", err, out)
	}
	mustCLI(t, s.APIURL, "app", "add", "worktree", "--repo", repo)
	mustCLI(t, s.APIURL, "app", "add", "bare", "--repo", bare)
	mustCLI(t, s.APIURL, "app", "add", "remote", "--repo", "file://"+bare)
	var apps []gantry.App
	if err := json.Unmarshal([]byte(mustCLI(t, s.APIURL, "app", "list", "--json")), &apps); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if got, want := strings.Join(names, " "), "bare remote worktree"; got != want {
		t.Errorf("apps stored: %s, want %s", got, want)
	}
}

// emptyRepo is a new git repository without commits: enough to register an
// app with, not to build it.
func emptyRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	return dir
}
