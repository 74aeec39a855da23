package docker_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// scratchDockerfile packs the shared driver test app into an image FROM
// scratch: no image can be pulled here.
const scratchDockerfile = "FROM scratch\nCOPY bin/testapp /testapp\n"

var gitEnv = []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost"}

// imageRepo is a git repository of an app whose service is the test app
// built into an image.
type imageRepo struct {
	t   *testing.T
	Dir string
}

// newImageRepo makes the repository on branch with the test app built and
// the given gantry.yml; nothing is committed yet.
func newImageRepo(t *testing.T, name, branch, manifest string) *imageRepo {
	t.Helper()
	r := &imageRepo{t: t, Dir: filepath.Join(t.TempDir(), name)}
	if _, err := drivertest.BuildTestApp(r.Dir); err != nil {
		t.Fatal(err)
	}
	r.write("gantry.yml", manifest)
	r.write("Dockerfile", scratchDockerfile)
	run(t, r.Dir, gitEnv, "git", "init", "-q", "-b", branch)
	return r
}

func (r *imageRepo) write(name, content string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(r.Dir, name)), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, name), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// commit writes VERSION (and any other files given) and commits everything.
func (r *imageRepo) commit(version string, files map[string]string) {
	r.t.Helper()
	r.write("VERSION", version+"\n")
	for name, content := range files {
		r.write(name, content)
	}
	run(r.t, r.Dir, gitEnv, "git", "add", "-A")
	run(r.t, r.Dir, gitEnv, "git", "commit", "-q", "-m", version)
}

// releaseJSON decodes the release that `gantry … --json` printed after its
// progress lines.
func releaseJSON(t *testing.T, out string) gantry.Release {
	t.Helper()
	var rel gantry.Release
	i := strings.Index(out, "{")
	if i < 0 {
		t.Fatalf("no release in the output:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out[i:]), &rel); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	return rel
}
