package build

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildHello builds the real examples/hello through a Builder, from a
// fresh git repository made of its files as the demo does, then runs the
// binary from the artifact: it must serve its version and stop on SIGTERM.
func TestBuildHello(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			t.Fatal("GANTRY_INTEGRATION=1 but go is not on PATH")
		}
		t.Skip("go is not on PATH")
	}
	r := MustRepo(t)
	src := filepath.Join("..", "examples", "hello")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	// The sample app is a package of the main module here; in its own
	// repository (as the demo makes it) it is a module of its own.
	files["go.mod"] = "module hello\n\ngo 1.22\n"
	commit := r.Commit("hello", files)

	b := MustBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rel, err := b.Build(ctx, Request{App: "hello", Repo: r.Dir, Builder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != "1.0.0" || rel.Commit != commit {
		t.Errorf("release %s at %s, want 1.0.0 at %s", rel.Version, rel.Commit, commit)
	}
	// Go builds with -trimpath are reproducible: a second build of the
	// commit, in another export directory, gives the same digest.
	again, err := MustBuilder(t).Build(ctx, Request{App: "hello", Repo: r.Dir, Ref: commit})
	if err != nil {
		t.Fatal(err)
	}
	if again.Artifacts["web"] != rel.Artifacts["web"] {
		t.Errorf("second build of hello: %+v, want %+v", again.Artifacts["web"], rel.Artifacts["web"])
	}

	dir := MustExtract(t, b.Artifacts, rel.Artifacts["web"].Digest)
	fi, err := os.Stat(filepath.Join(dir, "bin", "hello"))
	if err != nil {
		t.Fatalf("artifact has no bin/hello: %v", err)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/hello mode = %v, want executable", fi.Mode())
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "VERSION")); strings.TrimSpace(string(v)) != "1.0.0" {
		t.Errorf("artifact VERSION = %q, want 1.0.0", v)
	}

	// Run it as the process driver would: from the artifact directory, with
	// PORT set. PORT=0 lets the kernel pick; the app logs the address.
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "bin", "hello"))
	cmd.Dir = dir
	cmd.Env = []string{"PORT=0", "GANTRY_SLOT=green", "GANTRY_RELEASE=r42"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	lines := bufio.NewScanner(stderr)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("hello did not log its address")
	}
	go io.Copy(io.Discard, stderr)

	for path, want := range map[string]string{"/up": "ok", "/": `<dd id="version">1.0.0</dd>`} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want 200 containing %q", path, resp.StatusCode, body, want)
		}
		if path == "/" && !(strings.Contains(string(body), "green") && strings.Contains(string(body), "r42")) {
			t.Errorf("GET / does not show the slot and release:\n%s", body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("hello exited with %v after SIGTERM, want a clean exit", err)
	}
}
