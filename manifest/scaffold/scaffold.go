// Package scaffold proposes a first gantry.yml for a repository: it looks
// at the files that say what the app is (go.mod, package.json,
// requirements.txt or pyproject.toml, Gemfile and config.ru, a Dockerfile,
// a Procfile) and writes a manifest with a comment on each key. It reads a
// file system and returns text; it never writes files nor runs anything.
package scaffold

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// Kinds of repositories Detect recognises.
const (
	KindGo       = "go"
	KindNode     = "node"
	KindPython   = "python"
	KindRuby     = "ruby"
	KindDocker   = "docker"
	KindProcfile = "procfile"
)

// Service is one process type Detect proposes.
type Service struct {
	Name string `json:"name"`
	HTTP bool   `json:"http"`
	// Build and Artifacts are the build step (none: the commit's files are
	// the artifact); Docker builds the Dockerfile instead.
	Build     string   `json:"build,omitempty"`
	Artifacts []string `json:"artifacts,omitempty"`
	Docker    bool     `json:"docker,omitempty"`
	Run       string   `json:"run,omitempty"`
	// RunFrom says where Run comes from ("Procfile", "package.json scripts.start", …).
	RunFrom string `json:"run_from,omitempty"`
}

// Detection is what Detect found and proposes.
type Detection struct {
	App  string `json:"app"`
	Kind string `json:"kind"`
	// Evidence lists the files that told, with what each said.
	Evidence []string  `json:"evidence"`
	Services []Service `json:"services"`
	Driver   string    `json:"driver"`
	// Registry is where a Dockerfile app's images are pushed
	// (runtime.registry of each environment), from Options.Registry.
	Registry string `json:"registry,omitempty"`
	// Notes are what the user should check or do before the first deploy.
	Notes []string `json:"notes"`
}

// Options adjust Detect.
type Options struct {
	// App names the app; "" takes it from Dir's base name.
	App string
	// Dir is the repository's directory name, for the app's default name.
	Dir string
	// PreferDocker builds the Dockerfile even when a language is found.
	PreferDocker bool
	// Registry is host[:port]/path, where the images of a Dockerfile app
	// are pushed; only for an app the docker driver builds.
	Registry string
}

// Detect looks at the repository in fsys and proposes its services.
// EINVALID when nothing in it says how to run the app.
func Detect(fsys fs.FS, o Options) (*Detection, error) {
	d := &Detection{App: o.App, Driver: "process", Evidence: []string{}, Notes: []string{}}
	if d.App == "" {
		d.App = AppName(o.Dir)
	}
	if err := gantry.ValidName("app", d.App); err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "%s; pass --app NAME", gantry.ErrorMessage(err))
	}
	r := repo{fsys: fsys}
	procs, err := r.procfile()
	if err != nil {
		return nil, err
	}
	lang := r.language(d)
	switch {
	case r.has("Dockerfile") && (o.PreferDocker || lang == nil):
		d.Kind, d.Driver = KindDocker, "docker"
		run, err := dockerCmd(r.read("Dockerfile"))
		if err != nil {
			return nil, err
		}
		d.Evidence = append(d.Evidence, "Dockerfile: the image is the release")
		d.Services = []Service{{Name: "web", HTTP: true, Docker: true, Run: run, RunFrom: "the Dockerfile's CMD"}}
		d.Notes = append(d.Notes, "the image must listen on $PORT (Gantry sets it)")
		if d.Registry = strings.TrimRight(o.Registry, "/"); d.Registry == "" {
			d.Notes = append(d.Notes, "Gantry pushes each image it builds to a registry and deploys it by digest: set runtime.registry (host:port/"+d.App+") in test and prod, or write the manifest with gantry init --registry host:port/"+d.App+"; images built elsewhere come in with gantry release import instead")
		}
		return d, nil
	case lang == nil && procs == nil:
		return nil, gantry.Errorf(gantry.EINVALID, "nothing here says how to run the app: gantry init knows go.mod, package.json with a start script, requirements.txt or pyproject.toml with a WSGI/ASGI app, Gemfile with config.ru, a Dockerfile and a Procfile")
	case lang == nil:
		d.Kind = KindProcfile
	default:
		d.Kind = lang.kind
	}
	if procs != nil {
		d.Evidence = append(d.Evidence, fmt.Sprintf("Procfile: %d process type(s), %s", len(procs), procNames(procs)))
		for _, p := range procs {
			s := Service{Name: p.name, HTTP: p.name == "web", Run: p.command, RunFrom: "Procfile"}
			if lang != nil {
				s.Build, s.Artifacts, s.Run = lang.build, lang.artifacts, lang.wrap(p.command)
			}
			d.Services = append(d.Services, s)
		}
		if !hasWeb(procs) {
			d.Notes = append(d.Notes, "the Procfile has no web process: no service takes traffic through the router")
		}
	} else {
		if lang.run == "" {
			return nil, gantry.Errorf(gantry.EINVALID, "found %s but no command that starts the app: %s; add a Procfile with a web: line", lang.kind, lang.missing)
		}
		d.Services = []Service{{Name: "web", HTTP: true, Build: lang.build, Artifacts: lang.artifacts, Run: lang.run, RunFrom: lang.runFrom}}
	}
	if !r.has("VERSION") {
		d.Notes = append(d.Notes, "no VERSION file: commit one (1.0.0), tag the commit v1.0.0, or pass --version to the first deploy")
	}
	d.Notes = append(d.Notes, "every web service must listen on 127.0.0.1:$PORT and answer its health path")
	return d, nil
}

// AppName turns a directory name into an app name: lowercase, runs of
// other characters as one dash.
func AppName(dir string) string {
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(path.Base(strings.ReplaceAll(dir, "\\", "/"))), "-"), "-")
	if len(name) > gantry.MaxNameLength {
		name = strings.TrimRight(name[:gantry.MaxNameLength], "-")
	}
	if name == "" {
		return "app"
	}
	return name
}

var nonName = lazyre.New(`[^a-z0-9]+`)

type repo struct{ fsys fs.FS }

func (r repo) has(name string) bool {
	_, err := fs.Stat(r.fsys, name)
	return err == nil
}

func (r repo) read(name string) []byte {
	b, err := fs.ReadFile(r.fsys, name)
	if err != nil {
		return nil
	}
	return b
}

// dockerCmd returns the Dockerfile's last CMD as a run command: the shell
// form as written, the exec form joined (or the script of sh -c).
func dockerCmd(dockerfile []byte) (string, error) {
	var cmd string
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(line) > 4 && strings.EqualFold(line[:4], "CMD ") {
			cmd = strings.TrimSpace(line[4:])
		}
	}
	if cmd == "" {
		return "", gantry.Errorf(gantry.EINVALID, "the Dockerfile has no CMD (on one line): add one, or a Procfile with a web: line")
	}
	var argv []string
	if json.Unmarshal([]byte(cmd), &argv) != nil || len(argv) == 0 {
		return cmd, nil // the shell form
	}
	if len(argv) == 3 && (argv[0] == "sh" || argv[0] == "/bin/sh") && argv[1] == "-c" {
		return argv[2], nil
	}
	return strings.Join(argv, " "), nil
}

type proc struct{ name, command string }

var procLine = lazyre.New(`^([A-Za-z0-9_-]+):\s*(.+)$`)

// procfile reads the Procfile's process types (nil when there is none).
func (r repo) procfile() ([]proc, error) {
	b := r.read("Procfile")
	if b == nil {
		return nil, nil
	}
	var out []proc
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := procLine.FindStringSubmatch(line)
		if m == nil {
			return nil, gantry.Errorf(gantry.EINVALID, "Procfile:%d: want `name: command`, got %q", n, line)
		}
		name := AppName(m[1])
		if err := gantry.ValidName("service", name); err != nil {
			return nil, gantry.Errorf(gantry.EINVALID, "Procfile:%d: %s", n, gantry.ErrorMessage(err))
		}
		out = append(out, proc{name: name, command: m[2]})
	}
	if len(out) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "Procfile: no process type in it")
	}
	return out, nil
}

func procNames(ps []proc) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return strings.Join(names, ", ")
}

func hasWeb(ps []proc) bool {
	for _, p := range ps {
		if p.name == "web" {
			return true
		}
	}
	return false
}

// lang is what a language's files say: how to build, what to keep, how
// to run, and how a Procfile command finds the installed dependencies.
type lang struct {
	kind      string
	build     string
	artifacts []string
	run       string
	runFrom   string
	missing   string // why run is empty
	prefix    string // put before a Procfile command
}

func (l *lang) wrap(cmd string) string {
	if l.prefix == "" {
		return cmd
	}
	return l.prefix + " " + cmd
}

// language finds the first language whose files are present, in the
// order Go, Node, Python, Ruby, and adds its evidence to d.
func (r repo) language(d *Detection) *lang {
	for _, f := range []func(*Detection) *lang{r.golang, r.node, r.python, r.ruby} {
		if l := f(d); l != nil {
			return l
		}
	}
	return nil
}

var goModule = lazyre.New(`(?m)^module\s+(\S+)`)

func (r repo) golang(d *Detection) *lang {
	mod := r.read("go.mod")
	if mod == nil {
		return nil
	}
	m := goModule.FindSubmatch(mod)
	if m == nil {
		d.Notes = append(d.Notes, "go.mod names no module")
		return nil
	}
	module := strings.Trim(string(m[1]), `"`)
	l := &lang{kind: KindGo, build: "go build -trimpath -o bin/ ./...", artifacts: append([]string{"bin"}, r.present("static", "templates", "public", "assets", "VERSION")...)}
	// `go build -o bin/ ./...` names each command after its directory, the
	// one at the root after the module's last element.
	switch {
	case r.mainAt("."):
		l.run, l.runFrom = "bin/"+path.Base(module), "the main package at the root"
	default:
		cmds, _ := fs.Glob(r.fsys, "cmd/*/main.go")
		sort.Strings(cmds)
		for _, c := range cmds {
			if dir := path.Dir(c); r.mainAt(dir) {
				l.run, l.runFrom = "bin/"+path.Base(dir), "the main package "+dir
				break
			}
		}
	}
	if l.run == "" {
		l.missing = "no main package at the root or under cmd/"
	}
	d.Evidence = append(d.Evidence, fmt.Sprintf("go.mod: Go module %s", module))
	return l
}

var packageMain = lazyre.New(`(?m)^package main\b`)

// mainAt reports whether dir holds a Go main package.
func (r repo) mainAt(dir string) bool {
	files, _ := fs.Glob(r.fsys, path.Join(dir, "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") && packageMain.Match(r.read(f)) {
			return true
		}
	}
	return false
}

// present returns the names that exist at the repository's root.
func (r repo) present(names ...string) []string {
	var out []string
	for _, n := range names {
		if r.has(n) {
			out = append(out, n)
		}
	}
	return out
}

func (r repo) node(d *Detection) *lang {
	b := r.read("package.json")
	if b == nil {
		return nil
	}
	var pkg struct {
		Name    string            `json:"name"`
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		d.Notes = append(d.Notes, "package.json is not valid JSON: "+err.Error())
		return nil
	}
	install := "npm install --omit=dev --no-audit --no-fund"
	if r.has("package-lock.json") {
		install = "npm ci --omit=dev --no-audit --no-fund"
	}
	l := &lang{kind: KindNode, build: install, artifacts: []string{"."}}
	if _, ok := pkg.Scripts["build"]; ok {
		l.build = strings.Replace(install, " --omit=dev", "", 1) + " && npm run build && npm prune --omit=dev"
	}
	if start := pkg.Scripts["start"]; start != "" {
		l.run, l.runFrom = "npm start", "package.json scripts.start ("+start+")"
	} else {
		l.missing = "package.json has no scripts.start"
	}
	d.Evidence = append(d.Evidence, "package.json: a Node.js package"+map[bool]string{true: " with a start script", false: ""}[l.run != ""])
	return l
}

// pyApp finds a module-level app object: app = Flask(…), application = …
var pyApp = lazyre.New(`(?m)^(app|application)\s*[:=]`)

var pyASGI = lazyre.New(`FastAPI\(|Starlette\(|Quart\(|get_asgi_application`)

func (r repo) python(d *Detection) *lang {
	var install string
	switch {
	case r.has("requirements.txt"):
		install = "python3 -m pip install --no-cache-dir --target .deps -r requirements.txt"
		d.Evidence = append(d.Evidence, "requirements.txt: a Python app")
	case r.has("pyproject.toml"):
		install = "python3 -m pip install --no-cache-dir --target .deps ."
		d.Evidence = append(d.Evidence, "pyproject.toml: a Python project")
	default:
		return nil
	}
	// Dependencies go into .deps inside the release, found through
	// PYTHONPATH and PATH: a virtualenv would hold absolute paths of the
	// build's directory, which the release leaves.
	const env = "PATH=.deps/bin:$PATH PYTHONPATH=.deps"
	l := &lang{kind: KindPython, build: install, artifacts: []string{"."}, prefix: env}
	for _, f := range []string{"asgi.py", "wsgi.py", "main.py", "app.py"} {
		src := r.read(f)
		m := pyApp.FindSubmatch(src)
		if m == nil {
			continue
		}
		target := strings.TrimSuffix(f, ".py") + ":" + string(m[1])
		if f == "asgi.py" || pyASGI.Match(src) {
			l.run = env + " python3 -m uvicorn --host 127.0.0.1 --port $PORT " + target
			d.Evidence = append(d.Evidence, f+": an ASGI app ("+target+"), served by uvicorn")
		} else {
			l.run = env + " python3 -m gunicorn --bind 127.0.0.1:$PORT " + target
			d.Evidence = append(d.Evidence, f+": a WSGI app ("+target+"), served by gunicorn")
		}
		l.runFrom = f
		server := map[bool]string{true: "uvicorn", false: "gunicorn"}[strings.Contains(l.run, "uvicorn")]
		d.Notes = append(d.Notes, "the run command needs "+server+": among the requirements, or installed for the host's python3")
		return l
	}
	if wsgi, _ := fs.Glob(r.fsys, "*/wsgi.py"); r.has("manage.py") && len(wsgi) > 0 {
		target := path.Dir(wsgi[0]) + ".wsgi:application"
		l.run, l.runFrom = env+" python3 -m gunicorn --bind 127.0.0.1:$PORT "+target, "manage.py and "+wsgi[0]
		d.Evidence = append(d.Evidence, "manage.py: a Django project ("+target+")")
		return l
	}
	l.missing = "no wsgi.py, asgi.py, main.py or app.py defines app or application"
	return l
}

func (r repo) ruby(d *Detection) *lang {
	if !r.has("Gemfile") {
		return nil
	}
	l := &lang{kind: KindRuby, artifacts: []string{"."}, prefix: "bundle exec",
		// Gems go into vendor/bundle inside the release; .bundle/config,
		// kept with it, tells bundler where.
		build: "bundle config set --local path vendor/bundle && bundle install"}
	d.Evidence = append(d.Evidence, "Gemfile: a Ruby app")
	gemfile := string(r.read("Gemfile"))
	switch {
	case r.has("config/application.rb") && r.has("config.ru"):
		l.run, l.runFrom = "bundle exec rails server --binding 127.0.0.1 --port $PORT", "config/application.rb (Rails)"
		d.Evidence = append(d.Evidence, "config/application.rb: a Rails app")
	case r.has("config.ru") && strings.Contains(gemfile, "puma"):
		l.run, l.runFrom = "bundle exec puma --bind tcp://127.0.0.1:$PORT config.ru", "config.ru, served by puma"
		d.Evidence = append(d.Evidence, "config.ru: a Rack app; the Gemfile has puma")
	case r.has("config.ru"):
		l.run, l.runFrom = "bundle exec rackup --host 127.0.0.1 --port $PORT config.ru", "config.ru, served by rackup"
		d.Evidence = append(d.Evidence, "config.ru: a Rack app")
	default:
		l.missing = "no config.ru"
	}
	return l
}
