package build

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/internal/tarball"
	"gopkg.in/yaml.v3"
)

// testDecode is a TEST STAND-IN for package manifest's decoder, which is
// written separately and wired by the caller (cmd/gantry). It fills only
// what package build reads: app, version scheme, and each service's build or
// docker section and version_file. Unknown keys are ignored.
func testDecode(filename string, data []byte) (*gantry.Manifest, error) {
	var doc struct {
		App     string `yaml:"app"`
		Version struct {
			Scheme string `yaml:"scheme"`
		} `yaml:"version"`
		Services map[string]struct {
			Build *struct {
				Command   string   `yaml:"command"`
				Artifacts []string `yaml:"artifacts"`
			} `yaml:"build"`
			Docker *struct {
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"docker"`
			Order       int    `yaml:"order"`
			VersionFile string `yaml:"version_file"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "%s: %v", filename, err)
	}
	if doc.App == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "%s: app is required", filename)
	}
	m := &gantry.Manifest{App: doc.App, Version: gantry.VersionScheme{Scheme: doc.Version.Scheme}, Services: map[string]*gantry.Service{}}
	for name, s := range doc.Services {
		svc := &gantry.Service{Name: name, Order: s.Order, VersionFile: s.VersionFile}
		if s.Build != nil {
			svc.Build = &gantry.BuildSpec{Command: s.Build.Command, Artifacts: s.Build.Artifacts}
		}
		if s.Docker != nil {
			svc.Docker = &gantry.DockerSpec{Dockerfile: s.Docker.Dockerfile}
		}
		m.Services[name] = svc
	}
	return m, nil
}

// testNow is the builder's clock in tests.
var testNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// MustBuilder returns a Builder on a fresh artifact store and work dir.
func MustBuilder(tb testing.TB) *Builder {
	tb.Helper()
	dir := tb.TempDir()
	store, err := artifact.NewLocal(filepath.Join(dir, "artifacts"))
	if err != nil {
		tb.Fatal(err)
	}
	return &Builder{
		Artifacts: store,
		WorkDir:   filepath.Join(dir, "work"),
		Decode:    testDecode,
		Now:       func() time.Time { return testNow },
	}
}

// testRepo is a real git repository in a temp dir.
type testRepo struct {
	tb  testing.TB
	Dir string
}

// MustRepo returns an empty repository on branch main.
func MustRepo(tb testing.TB) *testRepo {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git is not installed")
	}
	r := &testRepo{tb: tb, Dir: tb.TempDir()}
	r.Git("init", "--quiet", "--initial-branch=main")
	return r
}

// Git runs git in the repo with a fixed identity and dates, and returns its
// trimmed output.
func (r *testRepo) Git(args ...string) string {
	r.tb.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.Dir,
		"-c", "user.name=Test", "-c", "user.email=test@example.invalid",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-03-01T12:00:00Z", "GIT_COMMITTER_DATE=2026-03-01T12:00:00Z",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		r.tb.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// Write writes files (name → content) into the working tree.
func (r *testRepo) Write(files map[string]string) {
	r.tb.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			r.tb.Fatal(err)
		}
	}
}

// Commit writes files, commits everything and returns the commit id.
func (r *testRepo) Commit(msg string, files map[string]string) string {
	r.tb.Helper()
	r.Write(files)
	r.Git("add", "-A")
	r.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// simpleManifest builds "out" with a shell command that copies and prints:
// deterministic, fast, and needing nothing but sh.
const simpleManifest = `app: demo
version: {scheme: semver}
services:
  web:
    build:
      command: mkdir -p out && cp app.txt out/ && cat app.txt && printf 'built %s\n' "$GANTRY_VERSION" > out/stamp
      artifacts: [out]
`

// MustExtract unpacks a stored tarball into a temp dir and returns the dir.
func MustExtract(tb testing.TB, store gantry.ArtifactStore, digest string) string {
	tb.Helper()
	rc, err := store.Open(context.Background(), digest)
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	dir := tb.TempDir()
	if err := tarball.Extract(rc, dir); err != nil {
		tb.Fatalf("extract %s: %v", digest, err)
	}
	return dir
}

// listFiles returns the relative names of all files under dir, with content.
func listFiles(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	files := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// wantCode fails unless err carries the gantry error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := gantry.ErrorCode(err); got != code {
		tb.Fatalf("got error code %q (%v), want %q", got, err, code)
	}
}
