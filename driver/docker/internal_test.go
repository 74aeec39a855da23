package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestParseSignal(t *testing.T) {
	for _, tt := range []struct{ in, want, code string }{
		{"", "SIGTERM", ""},
		{"SIGTERM", "SIGTERM", ""},
		{"quit", "SIGQUIT", ""},
		{" int ", "SIGINT", ""},
		{"SIGKILL", "SIGKILL", ""},
		{"SIGBOGUS", "", gantry.EINVALID},
		{"9", "", gantry.EINVALID},
	} {
		got, err := parseSignal(tt.in)
		if got != tt.want || gantry.ErrorCode(err) != tt.code {
			t.Errorf("parseSignal(%q) = %q, %v; want %q, code %q", tt.in, got, err, tt.want, tt.code)
		}
	}
}

func TestCommandArgs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"/testapp", []string{"/testapp"}},
		{"bin/web --log-level info", []string{"bin/web", "--log-level", "info"}},
		{"bin/web --port $PORT", []string{"/bin/sh", "-c", "bin/web --port $PORT"}},
		{"a && b", []string{"/bin/sh", "-c", "a && b"}},
		{`echo "hi there"`, []string{"/bin/sh", "-c", `echo "hi there"`}},
	} {
		if got := commandArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("commandArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidateSpec(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	good := gantry.InstanceSpec{
		App: "shop", Env: "test", Slot: "blue", Service: "web", Port: 8000,
		Artifact: gantry.Artifact{Kind: gantry.ArtifactImage, Image: "127.0.0.1:5000/shop/web@" + digest, Digest: digest},
	}
	if err := validateSpec(good); err != nil {
		t.Fatalf("validateSpec(good): %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*gantry.InstanceSpec)
		want string
	}{
		{"tarball", func(s *gantry.InstanceSpec) { s.Artifact.Kind = gantry.ArtifactTarball }, "runs image artifacts"},
		{"by tag", func(s *gantry.InstanceSpec) { s.Artifact.Image = "127.0.0.1:5000/shop/web:latest" }, "never by tag"},
		{"other digest", func(s *gantry.InstanceSpec) { s.Artifact.Digest = "sha256:" + strings.Repeat("b", 64) }, "does not have the artifact's digest"},
		{"slash in env", func(s *gantry.InstanceSpec) { s.Env = "a/b" }, "instance env"},
		{"upper service", func(s *gantry.InstanceSpec) { s.Service = "Web" }, "instance service"},
		{"negative index", func(s *gantry.InstanceSpec) { s.Index = -1 }, "negative"},
		{"port", func(s *gantry.InstanceSpec) { s.Port = 70000 }, "out of range"},
		{"signal", func(s *gantry.InstanceSpec) { s.Stop.Signal = "SIGNOPE" }, "unknown stop signal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := validateSpec(s)
			if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validateSpec: %v, want code %q mentioning %q", err, gantry.EINVALID, tt.want)
			}
		})
	}
}

// TestEnviron: an instance's environment is its Vars and the
// Gantry variables, which win; nothing of the server's.
func TestEnviron(t *testing.T) {
	t.Setenv("GANTRY_TEST_SERVER_SECRET", "hunter2")
	spec := gantry.InstanceSpec{App: "shop", Env: "test", Slot: "blue", Service: "web", Index: 1, ReleaseID: "r9", Port: 8000,
		Vars: map[string]string{"A": "1", "PORT": "1", "GANTRY_APP": "evil"}}
	d := &Driver{}
	env, err := d.environ(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "GANTRY_APP=shop", "GANTRY_ENV=test", "GANTRY_INSTANCE=1", "GANTRY_LISTEN=127.0.0.1:8000", "GANTRY_RELEASE=r9",
		"GANTRY_SERVICE=web", "GANTRY_SLOT=blue", "HOST=127.0.0.1", "PORT=8000"}
	if !slices.Equal(env, want) {
		t.Errorf("environ = %q, want %q", env, want)
	}
	// With a published port the container has a network of its own: it
	// listens on every interface of it.
	d.Network = NetworkPublish
	env, err = d.environ(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "HOST=0.0.0.0") || !slices.Contains(env, "GANTRY_LISTEN=0.0.0.0:8000") {
		t.Errorf("environ with a published port = %q, want HOST=0.0.0.0 and GANTRY_LISTEN=0.0.0.0:8000", env)
	}
	spec.Vars = map[string]string{"BAD=NAME": "s3cret"}
	if _, err := d.environ(spec); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("environ with a bad name: %v; want an error that does not show the value", err)
	}
}

func TestContainerConfig(t *testing.T) {
	d := &Driver{}
	spec := gantry.InstanceSpec{App: "shop", Env: "test", Slot: "blue", Service: "web", Index: 2, ReleaseID: "r1", Port: 8000,
		Command: "bin/web -v", Stop: gantry.StopSpec{Signal: "quit", Timeout: 1500 * time.Millisecond}}
	cfg, host := d.containerConfig(spec, nil)
	if cfg.StopSignal != "SIGQUIT" || cfg.StopTimeout == nil || *cfg.StopTimeout != 2 {
		t.Errorf("stop signal %q timeout %v, want SIGQUIT after 2s (rounded up)", cfg.StopSignal, cfg.StopTimeout)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"bin/web"}) || !slices.Equal(cfg.Cmd, []string{"-v"}) {
		t.Errorf("entrypoint %q cmd %q, want the run command", cfg.Entrypoint, cfg.Cmd)
	}
	if host.NetworkMode != "host" || host.RestartPolicy.Name != "no" || host.LogConfig.Type != "json-file" {
		t.Errorf("host config %+v: want host network, no restart policy, json-file logs", host)
	}
	for k, v := range map[string]string{LabelApp: "shop", LabelEnv: "test", LabelSlot: "blue", LabelRelease: "r1", LabelService: "web", LabelInstance: "2", LabelPort: "8000"} {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	if got := ContainerName("shop", "test", "blue", "web", 2); got != "gantry-shop-test-blue-web-2" {
		t.Errorf("ContainerName = %q", got)
	}
	d.Network = NetworkPublish
	_, host = d.containerConfig(spec, nil)
	if host.NetworkMode == "host" || len(host.PortBindings) != 1 {
		t.Fatalf("publish mode: network %q bindings %v", host.NetworkMode, host.PortBindings)
	}
	for _, bs := range host.PortBindings {
		if bs[0].HostIP != "127.0.0.1" || bs[0].HostPort != "8000" {
			t.Errorf("publish mode binds %+v, want 127.0.0.1:8000", bs[0])
		}
	}
}

func TestRepositoryOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/shop/web:1.0":                               "127.0.0.1:5000/shop/web",
		"127.0.0.1:5000/shop/web@sha256:" + strings.Repeat("a", 64): "127.0.0.1:5000/shop/web",
		"127.0.0.1:5000/shop/web":                                   "127.0.0.1:5000/shop/web",
		"busybox":                                                   "busybox",
	} {
		if got := repositoryOf(in); got != want {
			t.Errorf("repositoryOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteContextDockerignore(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		".dockerignore":           "# comment\nlogs\n**/*.log\n!keep/important.log\nnode_modules\nbuild/Dockerfile\n/secret?.txt\n",
		"build/Dockerfile":        "FROM scratch\n",
		"a.txt":                   "a",
		"secret1.txt":             "s",
		"logs/x.txt":              "x",
		"keep/important.log":      "!",
		"keep/other.log":          "o",
		"src/deep/trace.log":      "t",
		"node_modules/m/index.js": "m",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inside, name, err := contextEntries(dir, filepath.Join(dir, "build/Dockerfile"))
	if err != nil || !inside || name != "build/Dockerfile" {
		t.Fatalf("contextEntries = %v, %q, %v; want inside, build/Dockerfile", inside, name, err)
	}
	var buf bytes.Buffer
	if err := writeContext(&buf, dir, inside, filepath.Join(dir, "build/Dockerfile"), name); err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeDir {
			got = append(got, h.Name)
		}
	}
	want := []string{".dockerignore", "a.txt", "build/Dockerfile", "keep/important.log"}
	if !slices.Equal(got, want) {
		t.Errorf("context files %q, want %q", got, want)
	}
}

func TestWriteContextOutsideDockerfile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "app", "main"), []byte("bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	inside, name, err := contextEntries(filepath.Join(dir, "app"), filepath.Join(dir, "Dockerfile"))
	if err != nil || inside || name != outsideDockerfile {
		t.Fatalf("contextEntries = %v, %q, %v; want outside, %q", inside, name, err, outsideDockerfile)
	}
	var buf bytes.Buffer
	if err := writeContext(&buf, filepath.Join(dir, "app"), inside, filepath.Join(dir, "Dockerfile"), name); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
	}
	if got["main"] != 0o755 || got[outsideDockerfile] != 0o644 || len(got) != 2 {
		t.Errorf("context entries %v, want main (0755) and %s", got, outsideDockerfile)
	}
}
