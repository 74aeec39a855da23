package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestBuild(t *testing.T) {
	r := MustRepo(t)
	commit := r.Commit("first", map[string]string{"gantry.yml": simpleManifest, "app.txt": "hello v1\n", "VERSION": "1.0.0\n"})
	b := MustBuilder(t)
	var progress bytes.Buffer
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Builder: "alice", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(simpleManifest))
	checks := []struct{ field, got, want string }{
		{"app", rel.App, "demo"},
		{"version", rel.Version, "1.0.0"},
		{"commit", rel.Commit, commit},
		{"ref", rel.Ref, "main"}, // HEAD is recorded as the branch it is on
		{"builder", rel.Builder, "alice"},
		{"id", rel.ID, ""},
		{"manifest", string(rel.Manifest), simpleManifest},
		{"manifest digest", rel.ManifestDigest, "sha256:" + hex.EncodeToString(sum[:])},
		{"created", rel.CreatedAt.String(), testNow.String()},
		{"committed", rel.CommittedAt.String(), "2026-03-01 12:00:00 +0000 UTC"}, // the helper's GIT_COMMITTER_DATE
		{"artifact kind", rel.Artifacts["web"].Kind, gantry.ArtifactTarball},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}
	a := rel.Artifacts["web"]
	if a.Size <= 0 || !strings.HasPrefix(a.Digest, "sha256:") {
		t.Errorf("artifact = %+v, want a sha256 digest and a size", a)
	}
	files := listFiles(t, MustExtract(t, b.Artifacts, a.Digest))
	want := map[string]string{"out/app.txt": "hello v1\n", "out/stamp": "built 1.0.0\n"}
	if len(files) != len(want) {
		t.Errorf("artifact files = %v, want %v", files, want)
	}
	for name, content := range want {
		if files[name] != content {
			t.Errorf("artifact %s = %q, want %q", name, files[name], content)
		}
	}
	// Output streams to Progress, prefixed with the service name.
	for _, s := range []string{"web | hello v1", "==> resolved main to " + commit, "==> version 1.0.0"} {
		if !strings.Contains(progress.String(), s) {
			t.Errorf("progress does not contain %q:\n%s", s, progress.String())
		}
	}
	// The export is removed after the build; only the work dir itself stays.
	entries, err := os.ReadDir(b.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("work dir holds %d entries after the build, want 0", len(entries))
	}
}

// TestBuildIgnoresWorkingTree is W6's clean export: uncommitted edits,
// untracked files and staged-but-uncommitted changes never reach a release.
func TestBuildIgnoresWorkingTree(t *testing.T) {
	r := MustRepo(t)
	manifest := `app: demo
services:
  web:
    build:
      command: mkdir -p out && cp -R src out/ && ls -R . > out/listing
      artifacts: [out]
`
	commit := r.Commit("first", map[string]string{"gantry.yml": manifest, "src/app.txt": "committed\n", "VERSION": "1.0.0"})
	r.Write(map[string]string{
		"src/app.txt":     "UNCOMMITTED\n",
		"src/untracked":   "UNTRACKED\n",
		"src/staged.txt":  "STAGED\n",
		"VERSION":         "9.9.9",
		"gantry.yml":      strings.Replace(manifest, "cp -R src", "echo tampered > out/x; cp -R src", 1),
		"local-notes.txt": "UNTRACKED\n",
	})
	r.Git("add", "src/staged.txt")

	b := MustBuilder(t)
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Commit != commit || rel.Version != "1.0.0" || string(rel.Manifest) != manifest {
		t.Errorf("release = commit %s version %s, want commit %s version 1.0.0 and the committed manifest", rel.Commit, rel.Version, commit)
	}
	files := listFiles(t, MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest))
	if got := files["out/src/app.txt"]; got != "committed\n" {
		t.Errorf("out/src/app.txt = %q, want the committed content", got)
	}
	for name, content := range files {
		for _, leak := range []string{"UNCOMMITTED", "UNTRACKED", "STAGED", "tampered", "untracked", "staged.txt", "local-notes", ".git"} {
			if strings.Contains(name, leak) || strings.Contains(content, leak) {
				t.Errorf("artifact file %s leaks %q from the working tree:\n%s", name, leak, content)
			}
		}
	}
	if len(files) != 2 {
		t.Errorf("artifact files = %v, want out/src/app.txt and out/listing", files)
	}
}

func TestBuildDeterministic(t *testing.T) {
	r := MustRepo(t)
	r.Commit("first", map[string]string{"gantry.yml": simpleManifest, "app.txt": "same\n", "VERSION": "1.0.0"})
	b := MustBuilder(t)
	first, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	// A second builder and store: nothing is shared but the commit.
	b2 := MustBuilder(t)
	second, err := b2.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Ref: first.Commit})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := second.Artifacts["web"], first.Artifacts["web"]; got != want {
		t.Errorf("second build artifact = %+v, want the first's %+v", got, want)
	}
	if second.ManifestDigest != first.ManifestDigest {
		t.Errorf("manifest digest %s != %s", second.ManifestDigest, first.ManifestDigest)
	}
	// And a different commit gives a different digest.
	r.Commit("second", map[string]string{"app.txt": "changed\n"})
	third, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if third.Artifacts["web"].Digest == first.Artifacts["web"].Digest {
		t.Errorf("a changed commit kept digest %s", first.Artifacts["web"].Digest)
	}
}

func TestBuildFailures(t *testing.T) {
	r := MustRepo(t)
	r.Commit("no manifest", map[string]string{"README": "x"})
	r.Git("tag", "v0.0.1")
	failing := `app: demo
services:
  web:
    build:
      command: ./build.sh
      artifacts: [out]
`
	r.Commit("failing build", map[string]string{"gantry.yml": failing, "VERSION": "1.0.0",
		"build.sh": "for i in $(seq 1 30); do echo \"line $i\"; done; echo 'compile error: boom' >&2; exit 3\n"})
	r.Git("tag", "failing")
	r.Commit("missing artifact", map[string]string{"gantry.yml": strings.Replace(failing, "./build.sh", "true", 1)})
	r.Git("tag", "missing-artifact")
	r.Commit("other app", map[string]string{"gantry.yml": strings.Replace(simpleManifest, "app: demo", "app: other", 1), "app.txt": "x"})
	r.Git("tag", "other-app")
	r.Commit("bad yaml", map[string]string{"gantry.yml": "app: [demo\n"})
	r.Git("tag", "bad-yaml")
	r.Commit("no version", map[string]string{"gantry.yml": simpleManifest, "VERSION": ""})
	r.Git("rm", "--quiet", "VERSION")
	r.Git("commit", "--quiet", "-m", "drop VERSION")
	r.Git("tag", "no-version")

	tests := []struct {
		name     string
		req      Request
		code     string
		contains []string
		missing  []string
	}{
		{"missing gantry.yml", Request{App: "demo", Ref: "v0.0.1"}, gantry.EINVALID, []string{"no gantry.yml"}, nil},
		{"failing command", Request{App: "demo", Ref: "failing"}, gantry.EFAILED,
			[]string{"service web", "exit status 3", "compile error: boom", "line 30", "line 12"}, []string{"line 11\n"}},
		{"missing artifact", Request{App: "demo", Ref: "missing-artifact"}, gantry.EINVALID, []string{`artifact "out" was not produced`}, nil},
		{"app mismatch", Request{App: "demo", Ref: "other-app"}, gantry.EINVALID, []string{`declares app "other", not "demo"`}, nil},
		{"decoder error kept", Request{App: "demo", Ref: "bad-yaml"}, gantry.EINVALID, []string{"commit ", "gantry.yml: yaml:"}, nil},
		{"no version", Request{App: "demo", Ref: "no-version"}, gantry.EINVALID, []string{"no VERSION file", "--version"}, nil},
		{"bad version override", Request{App: "demo", Ref: "other-app~1", Version: "banana"}, gantry.EINVALID, []string{`"banana"`}, nil},
		{"missing ref", Request{App: "demo", Ref: "release/9.9"}, gantry.ENOTFOUND, []string{`"release/9.9"`}, nil},
		{"no app", Request{Ref: "main"}, gantry.EINVALID, []string{"app is required"}, nil},
	}
	b := MustBuilder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Repo = r.Dir
			rel, err := b.Build(context.Background(), tt.req)
			if err == nil {
				t.Fatalf("got release %+v, want an error", rel)
			}
			wantCode(t, err, tt.code)
			msg := gantry.ErrorMessage(err)
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error does not mention %q:\n%s", s, msg)
				}
			}
			for _, s := range tt.missing {
				if strings.Contains(msg, s) {
					t.Errorf("error mentions %q, beyond the last %d lines:\n%s", s, tailLines, msg)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(b.WorkDir); len(entries) != 0 {
		t.Errorf("failed builds left %d entries in the work dir, want 0", len(entries))
	}
}

// TestBuildEnvironment checks that a build sees the GANTRY_ variables and
// the passed-through ones, and none of the server's other variables.
func TestBuildEnvironment(t *testing.T) {
	t.Setenv("GANTRY_TEST_SECRET", "hunter2")
	t.Setenv("GOCACHE", "/tmp/gocache-for-test")
	r := MustRepo(t)
	commit := r.Commit("env", map[string]string{
		"gantry.yml": "app: demo\nservices:\n  web:\n    build:\n      command: env | sort > env.txt\n      artifacts: [env.txt]\n",
		"VERSION":    "2.1.0",
	})
	b := MustBuilder(t)
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	env := listFiles(t, MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest))["env.txt"]
	for _, want := range []string{"GANTRY_APP=demo\n", "GANTRY_VERSION=2.1.0\n", "GANTRY_COMMIT=" + commit + "\n", "GOCACHE=/tmp/gocache-for-test\n", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("build environment lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "hunter2") {
		t.Errorf("build environment leaks a server variable:\n%s", env)
	}
}

// TestBuildServices covers several services: a shared build is run once,
// a docker service is skipped with a note, a service without a build gets
// the commit's files.
func TestBuildServices(t *testing.T) {
	r := MustRepo(t)
	manifest := `app: demo
services:
  web:
    build: {command: "echo run >> count; mkdir -p out; cp count out/", artifacts: [out]}
  worker:
    order: 2
    build: {command: "echo run >> count; mkdir -p out; cp count out/", artifacts: [out]}
  api:
    docker: {dockerfile: Dockerfile}
  cron:
    order: 3
`
	r.Commit("multi", map[string]string{"gantry.yml": manifest, "VERSION": "1.0.0", "scripts/cron.sh": "echo tick\n"})
	b := MustBuilder(t)
	var progress bytes.Buffer
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Artifacts["web"] != rel.Artifacts["worker"] {
		t.Errorf("web %+v and worker %+v share a build but not an artifact", rel.Artifacts["web"], rel.Artifacts["worker"])
	}
	if got := listFiles(t, MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest))["out/count"]; got != "run\n" {
		t.Errorf("shared build ran %q times, want once", got)
	}
	if _, ok := rel.Artifacts["api"]; ok {
		t.Errorf("docker service api got a tarball artifact")
	}
	if !strings.Contains(progress.String(), "api: skipped: docker") {
		t.Errorf("progress lacks the docker note:\n%s", progress.String())
	}
	cron := listFiles(t, MustExtract(t, b.Artifacts, rel.Artifacts["cron"].Digest))
	if cron["scripts/cron.sh"] != "echo tick\n" || cron["gantry.yml"] != manifest {
		t.Errorf("cron artifact = %v, want the commit's files", cron)
	}
}

// TestBuildFromURL builds through a file:// URL, so the repository is
// mirrored under WorkDir and the export comes from the mirror.
func TestBuildFromURL(t *testing.T) {
	r := MustRepo(t)
	r.Commit("first", map[string]string{"gantry.yml": simpleManifest, "app.txt": "v1\n"})
	r.Git("checkout", "--quiet", "-b", "hotfix/16.03.1b")
	commit := r.Commit("fix", map[string]string{"gantry.yml": strings.Replace(simpleManifest, "semver", "calver", 1), "app.txt": "fixed\n"})
	r.Git("checkout", "--quiet", "main")
	r.Write(map[string]string{"app.txt": "dirty\n"})

	b := MustBuilder(t)
	rel, err := b.Build(context.Background(), Request{App: "demo", Repo: "file://" + r.Dir, Ref: "hotfix/16.03.1b"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Commit != commit || rel.Version != "16.03.1b" || rel.Ref != "hotfix/16.03.1b" {
		t.Errorf("release = %s %s %s, want %s 16.03.1b hotfix/16.03.1b", rel.Commit, rel.Version, rel.Ref, commit)
	}
	if got := listFiles(t, MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest))["out/app.txt"]; got != "fixed\n" {
		t.Errorf("out/app.txt = %q, want %q", got, "fixed\n")
	}
	if _, err := os.Stat(filepath.Join(b.WorkDir, "mirrors")); err != nil {
		t.Errorf("no mirror under the work dir: %v", err)
	}
}

// TestBuildCancel checks that cancelling stops the build command and the
// processes it started, promptly.
func TestBuildCancel(t *testing.T) {
	r := MustRepo(t)
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	r.Commit("slow", map[string]string{
		"gantry.yml": "app: demo\nservices:\n  web:\n    build:\n      command: ./slow.sh\n      artifacts: [out]\n",
		"slow.sh":    "sleep 120 &\necho $! > " + pidFile + "\necho started\nwait\n",
		"VERSION":    "1.0.0",
	})
	b := MustBuilder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	pw := &signalWriter{match: "web | started", ch: started}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Build(ctx, Request{App: "demo", Repo: r.Dir, Progress: pw})
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("build did not start within 30s")
	}
	cancel()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("got error %v, want an interrupted build", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("build still running 20s after cancel")
	}
	// The background sleep the command started is gone too.
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(data))
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background process %s of the build survived the cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether a process exists and is not a zombie.
func processAlive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

// signalWriter closes ch once a write contains match.
type signalWriter struct {
	match string
	ch    chan struct{}
	buf   bytes.Buffer
	done  bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.match) {
		w.done = true
		close(w.ch)
	}
	return len(p), nil
}

// TestBuildVersionSources checks that Build feeds DeriveVersion from the
// commit: its VERSION file, the tags on it, and the branch HEAD is on.
func TestBuildVersionSources(t *testing.T) {
	r := MustRepo(t)
	calver := strings.Replace(simpleManifest, "semver", "calver", 1)
	r.Commit("file", map[string]string{"gantry.yml": simpleManifest, "app.txt": "x", "VERSION": "1.2.3\n"})
	r.Git("tag", "with-file")
	r.Git("rm", "--quiet", "VERSION")
	r.Commit("tagged", nil)
	r.Git("tag", "-a", "-m", "release", "v2.0.0")
	r.Git("tag", "v2.0.0-rc.1")
	r.Git("checkout", "--quiet", "-b", "hotfix/26.02.4c")
	r.Commit("hotfix", map[string]string{"gantry.yml": calver})

	tests := []struct {
		name, ref, override, want, wantRef string
	}{
		{"VERSION file", "with-file", "", "1.2.3", "with-file"},
		{"highest tag", "v2.0.0", "", "2.0.0", "v2.0.0"},
		{"override", "v2.0.0", "2.0.1", "2.0.1", "v2.0.0"},
		{"calver from the branch HEAD is on", "", "", "26.02.4c", "hotfix/26.02.4c"},
	}
	b := MustBuilder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := b.Build(context.Background(), Request{App: "demo", Repo: r.Dir, Ref: tt.ref, Version: tt.override})
			if err != nil {
				t.Fatal(err)
			}
			if rel.Version != tt.want || rel.Ref != tt.wantRef {
				t.Errorf("got version %q ref %q, want %q ref %q", rel.Version, rel.Ref, tt.want, tt.wantRef)
			}
		})
	}
}
