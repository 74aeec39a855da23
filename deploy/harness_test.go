package deploy_test

// The harness builds a real deploy.Orchestrator over a real SQLite store and
// a real local artifact store, with the in-memory driver, router and
// database changer of internal/memdriver, internal/memrouter and
// internal/fakedb, so that the rollout engine is tested fast and from the
// outside: these tests use only the exported API of package deploy.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/gantry-dev/gantry/internal/fakedb"
	"github.com/gantry-dev/gantry/internal/memdriver"
	"github.com/gantry-dev/gantry/internal/memrouter"
	"github.com/gantry-dev/gantry/internal/tarball"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/gantry-dev/gantry/sqlite"
)

// T0 is the harness clock's start: a Monday morning, far from any freeze
// window a test does not declare.
var T0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Clock is the injected clock. Tick, when set, is added at every reading, so
// that a loop that waits for a time to pass (the post-switch watch) ends
// without sleeping through it.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.tick)
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *Clock) SetTick(d time.Duration) {
	c.mu.Lock()
	c.tick = d
	c.mu.Unlock()
}

// Options choose the harness's parts.
type Options struct {
	// RealRouter uses the in-process router of package proxy instead of memrouter.
	RealRouter bool
}

// Harness is one orchestrator with its store, driver, router and database.
type Harness struct {
	TB        testing.TB
	Ctx       context.Context
	Dir       string
	Store     *sqlite.DB
	Artifacts *artifact.Local
	Driver    *memdriver.Driver
	Slots     *memdriver.Slots
	Router    gantry.Router
	Mem       *memrouter.Router // nil with RealRouter
	DB        *fakedb.Changer
	Clock     *Clock
	O         *deploy.Orchestrator
	HTTP      *http.Client

	mu    sync.Mutex
	steps []string // "<deployment id> <step> <state>", from OnStep
	dbs   int
	migs  map[string]gantry.Artifact  // migrations tarballs by their names
	mans  map[string]*gantry.Manifest // decoded manifests by release ID
	ymls  map[string]bool             // test manifests known to decode
	// OnStep, when set, is called for every journal event of every orchestrator.
	OnStep func(d *gantry.Deployment, s gantry.Step)
}

// stateDir returns a directory for the SQLite file. The store has no option
// to skip fsync, and a deployment writes it a few dozen times; on a tmpfs
// (/dev/shm) fsync costs nothing, so the tests use one when there is one.
func stateDir(tb testing.TB) string {
	tb.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && os.Getenv("GANTRY_TEST_DISK") == "" {
		dir, err := os.MkdirTemp("/dev/shm", "gantry-deploy-test-")
		if err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// NewHarness returns a harness with an orchestrator ready to deploy.
func NewHarness(tb testing.TB, opts Options) *Harness {
	tb.Helper()
	h := &Harness{TB: tb, Ctx: context.Background(), Dir: stateDir(tb), Clock: &Clock{now: T0}}
	var err error
	if h.Store, err = sqlite.Open(h.Ctx, filepath.Join(h.Dir, "state.db")); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Store.Close() })
	if h.Artifacts, err = artifact.NewLocal(filepath.Join(h.Dir, "artifacts")); err != nil {
		tb.Fatal(err)
	}
	h.Driver = memdriver.New()
	h.Slots = memdriver.NewSlots()
	tb.Cleanup(h.Driver.Close)
	tb.Cleanup(h.Slots.Close)
	if opts.RealRouter {
		h.Router = newRealRouter(tb)
	} else {
		h.Mem = memrouter.New()
		h.Router = h.Mem
	}
	h.DB = &fakedb.Changer{Now: h.Clock.Now}
	h.HTTP = &http.Client{Timeout: 2 * time.Second}
	h.O = h.NewOrchestrator()
	return h
}

// NewOrchestrator returns another orchestrator on the same store, driver,
// router and database: what a server restarted after a crash would have.
func (h *Harness) NewOrchestrator() *deploy.Orchestrator {
	return &deploy.Orchestrator{
		Store:        h.Store,
		Router:       h.Router,
		Artifacts:    h.Artifacts,
		Drivers:      map[string]gantry.Driver{"process": h.Driver, "kubernetes": h.Slots},
		Decode:       manifest.Decode,
		SecretFor:    h.secretFor,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:          h.Clock.Now,
		HTTPClient:   h.HTTP,
		Databases:    h.DB,
		SnapshotRoot: filepath.Join(h.Dir, "snapshots"),
		OnStep:       h.onStep,
	}
}

func (h *Harness) onStep(d *gantry.Deployment, s gantry.Step) {
	h.mu.Lock()
	h.steps = append(h.steps, fmt.Sprintf("%d %s %s", d.ID, s.Name, s.State))
	fn := h.OnStep
	h.mu.Unlock()
	if fn != nil {
		fn(d, s)
	}
}

// SetOnStep sets the observer of every journal event (nil: none).
func (h *Harness) SetOnStep(fn func(d *gantry.Deployment, s gantry.Step)) {
	h.mu.Lock()
	h.OnStep = fn
	h.mu.Unlock()
}

// CrashAt runs fn (an operation) in a goroutine that stops for good when a
// journal step named step reaches state: the process "dies" there, its
// records as they were written. It returns once that happened.
func (h *Harness) CrashAt(tb testing.TB, step, state string, fn func()) {
	tb.Helper()
	reached := make(chan struct{})
	var once sync.Once
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == step && s.State == state {
			once.Do(func() { close(reached) })
			select {} // never returns: the process is gone
		}
	})
	go fn()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		tb.Fatalf("the operation never reached step %s (%s)", step, state)
	}
	h.SetOnStep(nil)
}

// secretFor resolves secrets from the store, where they follow an
// environment through a rename as the server's do. Each environment's
// DATABASE_URL is made on first use, a fake database of its own.
func (h *Harness) secretFor(app, env, name string) (string, bool) {
	if b, err := h.Store.FindSecret(h.Ctx, app, env, name); err == nil {
		return string(b), true
	}
	if name != deploy.DatabaseURLSecret {
		return "", false
	}
	h.mu.Lock()
	h.dbs++
	url := fmt.Sprintf("mem://%s/%s/%d", app, env, h.dbs)
	h.mu.Unlock()
	if err := h.Store.PutSecret(h.Ctx, app, env, name, []byte(url)); err != nil {
		return "", false
	}
	return url, true
}

// DBURL is the (fake) database an environment is bound to.
func (h *Harness) DBURL(app, env string) string {
	url, _ := h.secretFor(app, env, deploy.DatabaseURLSecret)
	return url
}

// Svc is a service of a test manifest.
type Svc struct {
	Name      string
	Worker    bool
	Instances int
	Order     int
}

// Env is an environment of a test manifest.
type Env struct {
	Name        string
	PromoteFrom string
	Strategy    string
	KeepWarm    string // "0s", "10m"; "" is the default
	Approvals   int
	Hotfix      int // hotfix_approvals.required; 0: none
	ViaClone    bool
	Runtime     string // "" is process
	Freeze      [][2]time.Time
	Watch       string // the watch mapping, inline YAML ({window: 1m, …})
}

// App is a test manifest.
type App struct {
	Name     string
	Services []Svc
	Database bool
	Verify   bool
	Envs     []Env
	// Extra is top-level YAML added as is (hooks:, notify:, verify: …).
	Extra string
}

// Simple is a one-service app with test and prod (prod promoted from test).
func Simple(name string) App {
	return App{Name: name, Services: []Svc{{Name: "web"}}, Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
}

// YAML writes the app's gantry.yml.
func (a App) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "app: %s\nservices:\n", a.Name)
	for _, s := range a.Services {
		fmt.Fprintf(&b, "  %s:\n    build: {command: \"true\", artifacts: [bin]}\n    run: bin/%s\n", s.Name, s.Name)
		if s.Worker {
			b.WriteString("    http: false\n    ready_delay: 0s\n")
		} else {
			b.WriteString("    health: {path: /up, interval: 10ms, timeout: 1s}\n")
		}
		if s.Instances > 0 {
			fmt.Fprintf(&b, "    instances: %d\n", s.Instances)
		}
		fmt.Fprintf(&b, "    order: %d\n", s.Order)
	}
	if a.Verify {
		b.WriteString("verify:\n  - http: {path: /, status: 200, contains: release}\n")
	}
	if a.Database {
		b.WriteString("database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n")
	}
	b.WriteString(a.Extra)
	b.WriteString("environments:\n")
	for _, e := range a.Envs {
		fmt.Fprintf(&b, "  %s:\n    hosts: [%s.%s.localhost]\n", e.Name, e.Name, a.Name)
		if e.Runtime != "" {
			fmt.Fprintf(&b, "    runtime: {driver: %s}\n", e.Runtime)
		}
		if e.Strategy != "" {
			fmt.Fprintf(&b, "    strategy: %s\n", e.Strategy)
		}
		if e.KeepWarm != "" {
			fmt.Fprintf(&b, "    keep_warm: %s\n", e.KeepWarm)
		}
		if e.PromoteFrom != "" {
			fmt.Fprintf(&b, "    promote_from: %s\n", e.PromoteFrom)
		}
		if e.Approvals > 0 {
			fmt.Fprintf(&b, "    approvals: {required: %d}\n", e.Approvals)
		}
		if e.Hotfix > 0 {
			fmt.Fprintf(&b, "    hotfix_approvals: {required: %d}\n", e.Hotfix)
		}
		if e.ViaClone {
			b.WriteString("    migrations_via_clone: true\n")
		}
		if len(e.Freeze) > 0 {
			b.WriteString("    freeze:\n")
			for _, w := range e.Freeze {
				fmt.Fprintf(&b, "      - {from: %q, to: %q, reason: release week}\n", w[0].Format(time.RFC3339), w[1].Format(time.RFC3339))
			}
		}
		if e.Watch != "" {
			fmt.Fprintf(&b, "    watch: %s\n", e.Watch)
		}
	}
	return b.String()
}

// Rel says what a test release is made of.
type Rel struct {
	Version    string
	Ref        string
	Migrations []string // names of the release's migrations, in order
	Images     bool     // image artifacts (for the slot-driven runtime)
}

// MustApp creates an app in the store (once).
func (h *Harness) MustApp(tb testing.TB, name string) {
	tb.Helper()
	if _, err := h.Store.FindApp(h.Ctx, name); err == nil {
		return
	}
	if err := h.Store.CreateApp(h.Ctx, &gantry.App{Name: name, Repo: "/nonexistent/" + name, CreatedAt: T0}); err != nil {
		tb.Fatalf("create app %s: %v", name, err)
	}
}

// MustRelease stores a release of app a, with its artifacts in the
// artifact store so that verify-artifacts passes, and a migrations tarball
// when the app declares a database.
func (h *Harness) MustRelease(tb testing.TB, a App, r Rel) *gantry.Release {
	tb.Helper()
	h.MustApp(tb, a.Name)
	yml := a.YAML()
	h.mu.Lock()
	checked := h.ymls[yml]
	h.mu.Unlock()
	if !checked {
		if _, err := manifest.Decode("gantry.yml", []byte(yml)); err != nil {
			tb.Fatalf("test manifest does not decode: %v\n%s", err, yml)
		}
		h.mu.Lock()
		if h.ymls == nil {
			h.ymls = map[string]bool{}
		}
		h.ymls[yml] = true
		h.mu.Unlock()
	}
	sum := sha256.Sum256([]byte(a.Name + "\x00" + r.Version + "\x00" + yml + "\x00" + strings.Join(r.Migrations, ",")))
	id := "r" + hex.EncodeToString(sum[:])[:15]
	if rel, err := h.Store.FindRelease(h.Ctx, a.Name, id); err == nil {
		return rel
	}
	md := sha256.Sum256([]byte(yml))
	rel := &gantry.Release{ID: id, App: a.Name, Version: r.Version, Commit: hex.EncodeToString(sum[:20]), Ref: r.Ref,
		Artifacts: map[string]gantry.Artifact{}, Manifest: []byte(yml), ManifestDigest: "sha256:" + hex.EncodeToString(md[:]),
		Builder: "test", CreatedAt: T0}
	for _, s := range a.Services {
		if r.Images {
			d := sha256.Sum256([]byte(id + s.Name))
			dg := "sha256:" + hex.EncodeToString(d[:])
			rel.Artifacts[s.Name] = gantry.Artifact{Kind: gantry.ArtifactImage, Digest: dg, Image: "registry.test/" + a.Name + "@" + dg}
			continue
		}
		dg, size, err := h.Artifacts.Put(h.Ctx, strings.NewReader("binary of "+s.Name+" "+r.Version))
		if err != nil {
			tb.Fatal(err)
		}
		rel.Artifacts[s.Name] = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: dg, Size: size}
	}
	if a.Database {
		key := strings.Join(r.Migrations, ",")
		h.mu.Lock()
		art, ok := h.migs[key]
		h.mu.Unlock()
		if !ok {
			dg, size := h.mustMigrations(tb, r.Migrations)
			art = gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: dg, Size: size}
			h.mu.Lock()
			if h.migs == nil {
				h.migs = map[string]gantry.Artifact{}
			}
			h.migs[key] = art
			h.mu.Unlock()
		}
		rel.Artifacts[gantry.MigrationsArtifact] = art
	}
	if err := h.Store.CreateRelease(h.Ctx, rel); err != nil {
		tb.Fatalf("create release %s: %v", r.Version, err)
	}
	return rel
}

// mustMigrations puts a tarball of db/migrations/<name>.json into the
// artifact store.
func (h *Harness) mustMigrations(tb testing.TB, names []string) (string, int64) {
	tb.Helper()
	dir := tb.TempDir()
	mdir := filepath.Join(dir, "db", "migrations")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, n := range names {
		body := fmt.Sprintf(`{"name": %q, "operations": []}`, n)
		if err := os.WriteFile(filepath.Join(mdir, n+".json"), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := tarball.Write(&buf, dir, []string{"db/migrations"}); err != nil {
		tb.Fatal(err)
	}
	dg, size, err := h.Artifacts.Put(h.Ctx, &buf)
	if err != nil {
		tb.Fatal(err)
	}
	return dg, size
}

// MustDeploy deploys and fails the test on an error.
func (h *Harness) MustDeploy(tb testing.TB, app, env string, rel *gantry.Release) *gantry.Deployment {
	tb.Helper()
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: "dev"}, nil)
	if err != nil {
		tb.Fatalf("deploy %s to %s: %v", rel.Version, env, err)
	}
	return d
}

// MustEnv returns an environment's record.
func (h *Harness) MustEnv(tb testing.TB, app, env string) *gantry.Environment {
	tb.Helper()
	e, err := h.Store.FindEnvironment(h.Ctx, app, env)
	if err != nil {
		tb.Fatalf("find environment %s: %v", env, err)
	}
	return e
}

// ActiveRelease returns the release active on an environment ("" when none).
func (h *Harness) ActiveRelease(tb testing.TB, app, env string) string {
	tb.Helper()
	e, err := h.Store.FindEnvironment(h.Ctx, app, env)
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return ""
	} else if err != nil {
		tb.Fatal(err)
	}
	if a := e.ActiveSlot(); a != nil {
		return a.ReleaseID
	}
	return ""
}

// Serving returns the sorted targets the router serves for a route.
func (h *Harness) Serving(tb testing.TB, app, env string) []string {
	tb.Helper()
	sts, err := h.Router.Status(h.Ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, st := range sts {
		if st.Route.Name == gantry.RouteName(app, env) {
			var out []string
			for _, t := range st.Active {
				out = append(out, t.Addr)
			}
			sort.Strings(out)
			return out
		}
	}
	return nil
}

// WebAddrs returns the sorted addresses of a slot's web instances.
func WebAddrs(s *gantry.Slot, workers ...string) []string {
	var out []string
	if s == nil {
		return nil
	}
	for _, inst := range s.Instances {
		if inst.Addr != "" && !contains(workers, inst.Service) {
			out = append(out, inst.Addr)
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Body GETs url and returns the body ("" on an error).
func (h *Harness) Body(url string) string {
	resp, err := h.HTTP.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Steps returns the names of a deployment's journal steps, in order.
func (h *Harness) Steps(tb testing.TB, id int64) []string {
	tb.Helper()
	d, err := h.Store.FindDeployment(h.Ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, s := range d.Steps {
		out = append(out, s.Name)
	}
	return out
}

// MustNoLock fails when the environment's lock is held.
func (h *Harness) MustNoLock(tb testing.TB, app, env string) {
	tb.Helper()
	if l, err := h.Store.FindLock(h.Ctx, app, env); err == nil {
		tb.Errorf("lock of %s is held by %s (%s, deployment #%d), want free", env, l.Holder, l.Operation, l.DeploymentID)
	} else if gantry.ErrorCode(err) != gantry.ENOTFOUND {
		tb.Fatal(err)
	}
}

// Running returns the deployments of an app left running or paused.
func (h *Harness) Running(tb testing.TB, app string) []*gantry.Deployment {
	tb.Helper()
	var out []*gantry.Deployment
	for _, st := range []string{gantry.DeploymentRunning, gantry.DeploymentPaused} {
		ds, err := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: app, State: st, Limit: 100})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ds...)
	}
	return out
}

// MustConsistent checks that what the environment's record says is active
// is what the router serves, and that the record's instances run.
func (h *Harness) MustConsistent(tb testing.TB, app, env string) {
	tb.Helper()
	e := h.MustEnv(tb, app, env)
	a := e.ActiveSlot()
	if a == nil {
		return
	}
	want := h.webTargets(tb, app, a)
	if got := h.Serving(tb, app, env); strings.Join(got, ",") != strings.Join(want, ",") {
		tb.Errorf("%s: router serves %v, the record's active slot %s (%s) has web instances %v", env, got, a.Name, a.Version, want)
	}
	running := map[string]bool{}
	for _, r := range h.Driver.Running() {
		running[r.Handle] = true
	}
	for _, s := range e.Slots {
		for _, inst := range s.Instances {
			if !running[inst.Handle] {
				tb.Errorf("%s: slot %s lists instance %s-%d (%s) which does not run", env, s.Name, inst.Service, inst.Index, inst.Handle)
			}
		}
	}
}

// webTargets returns the addresses of a slot's http instances, by the
// manifest of the release it runs.
func (h *Harness) webTargets(tb testing.TB, app string, s *gantry.Slot) []string {
	tb.Helper()
	h.mu.Lock()
	m := h.mans[s.ReleaseID]
	h.mu.Unlock()
	if m == nil {
		rel, err := h.Store.FindRelease(h.Ctx, app, s.ReleaseID)
		if err != nil {
			tb.Fatal(err)
		}
		if m, err = manifest.Decode("gantry.yml", rel.Manifest); err != nil {
			tb.Fatal(err)
		}
		h.mu.Lock()
		if h.mans == nil {
			h.mans = map[string]*gantry.Manifest{}
		}
		h.mans[s.ReleaseID] = m
		h.mu.Unlock()
	}
	var workers []string
	for n, svc := range m.Services {
		if !svc.HTTP {
			workers = append(workers, n)
		}
	}
	return WebAddrs(s, workers...)
}

var (
	noKnobs        = memdriver.Knobs{}
	memKnobFailWeb = memdriver.Knobs{FailStart: true}
)
