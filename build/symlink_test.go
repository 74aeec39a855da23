package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestBuildRefusesArtifactsOutsideTheExport: a committed symlink that
// leads out of the export, as a directory on the way to an artifact, as
// the artifact itself or inside an artifact directory, fails the build with
// EINVALID naming the artifact and the link; nothing of the build
// machine's files is stored. Links that stay inside are kept (issue 12,
// fact 8).
func TestBuildRefusesArtifactsOutsideTheExport(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "hostname"), []byte("build-machine-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := MustRepo(t)
	manifest := func(artifacts string) string {
		return "app: demo\nservices:\n  web:\n    build:\n      command: \"true\"\n      artifacts: " + artifacts + "\n"
	}
	commitWithLinks := func(tag, artifacts string, links map[string]string) {
		t.Helper()
		r.Write(map[string]string{"gantry.yml": manifest(artifacts), "VERSION": "1.0.0", "out/v1/app.txt": "app\n"})
		for name, target := range links {
			p := filepath.Join(r.Dir, filepath.FromSlash(name))
			os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
		r.Commit(tag, nil)
		r.Git("tag", tag)
	}
	deep := strings.Repeat("../", 40) + strings.TrimPrefix(outside, "/")
	commitWithLinks("parent", "[etcdir/hostname]", map[string]string{"etcdir": outside})
	commitWithLinks("itself", "[etcdir]", nil)
	commitWithLinks("relative", "[up/hostname]", map[string]string{"up": deep})
	commitWithLinks("inside-dir", "[out]", map[string]string{"out/peek": deep})
	r.Git("rm", "--quiet", "-r", "etcdir", "up", "out/peek")
	commitWithLinks("kept", "[out, current/app.txt]", map[string]string{"out/current": "v1", "current": "out/v1"})

	b := MustBuilder(t)
	for _, tt := range []struct{ tag, want string }{
		{"parent", `service web: artifact "etcdir/hostname": etcdir is a symlink to ` + outside + ", outside the build directory"},
		{"itself", `artifact "etcdir": etcdir is a symlink to ` + outside},
		{"relative", `artifact "up/hostname": up is a symlink to ../`},
		{"inside-dir", `artifact "out": out/peek is a symlink to ../`},
	} {
		rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Ref: tt.tag})
		if err == nil {
			t.Errorf("%s: built, shipping %v; want a refusal", tt.tag, shipped(t, MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest)))
			continue
		}
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want EINVALID with %q", tt.tag, err, tt.want)
		}
	}
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Ref: "kept"})
	if err != nil {
		t.Fatalf("links inside the export: %v", err)
	}
	dir := MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest)
	if target, err := os.Readlink(filepath.Join(dir, "out", "current")); err != nil || target != "v1" {
		t.Errorf("out/current is %q, %v; want the link to v1 kept", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "current", "app.txt")); err != nil || string(b) != "app\n" {
		t.Errorf("current/app.txt = %q, %v", b, err)
	}
}

// shipped lists what an unpacked artifact holds: links with their target,
// regular files with their content.
func shipped(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		switch {
		case err != nil || fi.IsDir():
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		default:
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s: %q", rel, b))
		}
		return nil
	})
	return out
}
