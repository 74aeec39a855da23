package scaffold

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden manifests under testdata/golden")

// TestSampleRepositories runs Detect and Render on each sample repository
// under testdata/repos: every manifest passes the manifest decoder (what
// `gantry manifest check` runs) and equals its golden file.
func TestSampleRepositories(t *testing.T) {
	for _, c := range []struct {
		repo, kind string
		services   []string
		run        string // the web service's run command
		driver     string
	}{
		{"goapp", KindGo, []string{"web"}, "bin/goapp", "process"},
		{"procfile", KindProcfile, []string{"web", "worker"}, "python3 -m http.server $PORT --bind 127.0.0.1 --directory public", "process"},
		{"nodeapp", KindNode, []string{"web"}, "npm start", "process"},
		{"pyapp", KindPython, []string{"web"}, "PATH=.deps/bin:$PATH PYTHONPATH=.deps python3 -m gunicorn --bind 127.0.0.1:$PORT app:app", "process"},
		{"rubyapp", KindRuby, []string{"web"}, "bundle exec puma --bind tcp://127.0.0.1:$PORT config.ru", "process"},
		{"dockerapp", KindDocker, []string{"web"}, "/server", "docker"},
	} {
		t.Run(c.repo, func(t *testing.T) {
			d, err := Detect(os.DirFS(filepath.Join("testdata", "repos", c.repo)), Options{Dir: c.repo})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range d.Services {
				names = append(names, s.Name)
			}
			if d.Kind != c.kind || !slices.Equal(names, c.services) || d.Services[0].Run != c.run || d.Driver != c.driver || d.App != c.repo {
				t.Errorf("got kind %s, services %v, run %q, driver %s, app %s; want %s, %v, %q, %s, %s",
					d.Kind, names, d.Services[0].Run, d.Driver, d.App, c.kind, c.services, c.run, c.driver, c.repo)
			}
			out := Render(d)
			m, err := manifest.Decode("gantry.yml", out)
			if err != nil {
				t.Fatalf("the proposed manifest does not pass the check: %v\n%s", err, out)
			}
			if m.App != c.repo || len(m.Services) != len(c.services) || m.Environments["prod"] == nil || m.Environments["prod"].PromoteFrom != "test" {
				t.Errorf("decoded: app %s, %d services, prod %+v", m.App, len(m.Services), m.Environments["prod"])
			}
			golden := filepath.Join("testdata", "golden", c.repo+".yml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if string(out) != string(want) {
				t.Errorf("manifest differs from %s (go test -update rewrites it):\n%s", golden, out)
			}
			for _, l := range strings.Split(string(out), "\n") {
				key := strings.TrimSpace(l)
				if key != "" && !strings.HasPrefix(key, "#") && !strings.HasPrefix(key, "-") && strings.Contains(key, ":") && !hasCommentAbove(out, l) {
					// Every mapping that opens a section, and every key, is explained just above.
					t.Errorf("line %q has no comment above it", l)
				}
			}
		})
	}
}

// hasCommentAbove reports whether line is explained: a comment right
// above it or above the run of sibling keys it belongs to, or, for a key
// inside a mapping, its parent key is explained.
func hasCommentAbove(out []byte, line string) bool {
	lines := strings.Split(string(out), "\n")
	var covered func(i int) bool
	covered = func(i int) bool {
		for j := i - 1; j >= 0; j-- {
			p := strings.TrimSpace(lines[j])
			switch {
			case strings.HasPrefix(p, "#"):
				return true
			case p == "":
				return false
			case indent(lines[j]) < indent(lines[i]):
				return covered(j)
			}
		}
		return false
	}
	i := slices.Index(lines, line)
	return i >= 0 && covered(i)
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func TestDetectChoices(t *testing.T) {
	goCmd := fstest.MapFS{
		"go.mod":               {Data: []byte("module example.com/tool\n")},
		"cmd/api/main.go":      {Data: []byte("package main\nfunc main() {}\n")},
		"internal/x/x.go":      {Data: []byte("package x\n")},
		"Dockerfile":           {Data: []byte("FROM scratch\nCOPY bin/api /api\nCMD [\"/api\"]\n")},
		"static/index.html":    {Data: []byte("hi")},
		"cmd/api/main_test.go": {Data: []byte("package main\n")},
	}
	d, err := Detect(goCmd, Options{Dir: "/src/My Tool"})
	if err != nil {
		t.Fatal(err)
	}
	if d.App != "my-tool" || d.Kind != KindGo || d.Services[0].Run != "bin/api" || !slices.Equal(d.Services[0].Artifacts, []string{"bin", "static"}) {
		t.Errorf("go under cmd/: got %+v", d)
	}
	if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, "VERSION") }) {
		t.Errorf("no VERSION file: want a note saying so, got %v", d.Notes)
	}
	d, err = Detect(goCmd, Options{Dir: "tool", PreferDocker: true})
	if err != nil || d.Kind != KindDocker || !d.Services[0].Docker || d.Services[0].Run != "/api" {
		t.Errorf("--docker: got %+v, %v; want the Dockerfile built", d, err)
	}
	// A Procfile names the commands; the language builds.
	withProcfile := fstest.MapFS{
		"requirements.txt": {Data: []byte("gunicorn\n")},
		"Procfile":         {Data: []byte("web: gunicorn app:app\nrelease: ./migrate.sh\n")},
	}
	d, err = Detect(withProcfile, Options{App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != KindPython || len(d.Services) != 2 || d.Services[0].Run != "PATH=.deps/bin:$PATH PYTHONPATH=.deps gunicorn app:app" || d.Services[1].HTTP {
		t.Errorf("python with a Procfile: got %+v", d)
	}
	if _, err := manifest.Decode("gantry.yml", Render(d)); err != nil {
		t.Errorf("python with a Procfile: %v", err)
	}

	for _, bad := range []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"empty", fstest.MapFS{"README.md": {Data: []byte("hi")}}, "nothing here says how to run the app"},
		{"node without start", fstest.MapFS{"package.json": {Data: []byte(`{"scripts": {"test": "jest"}}`)}}, "no scripts.start"},
		{"go without main", fstest.MapFS{"go.mod": {Data: []byte("module x\n")}, "lib.go": {Data: []byte("package x\n")}}, "no main package"},
		{"bad Procfile", fstest.MapFS{"Procfile": {Data: []byte("web gunicorn\n")}}, "Procfile:1"},
		{"python without app", fstest.MapFS{"requirements.txt": {Data: []byte("requests\n")}}, "no wsgi.py"},
	} {
		_, err := Detect(bad.fsys, Options{App: "x"})
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), bad.want) {
			t.Errorf("%s: got %v, want EINVALID saying %q", bad.name, err, bad.want)
		}
	}
	if _, err := Detect(goCmd, Options{App: "Not_OK"}); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("a bad --app: got %v, want EINVALID", err)
	}
}

func TestAppName(t *testing.T) {
	for in, want := range map[string]string{
		"/home/me/My Shop": "my-shop", "shop": "shop", "__": "app", "/": "app", "Web_App.v2": "web-app-v2",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := AppName(in); got != want {
			t.Errorf("AppName(%q) = %q, want %q", in, got, want)
		}
	}
}
