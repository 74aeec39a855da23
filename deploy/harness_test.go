package deploy_test

// The harness builds a real deploy.Orchestrator over a real SQLite store and
// a real local artifact store, with the in-memory driver, router and
// database changer of internal/memdriver, internal/memrouter and
// internal/fakedb, so that the rollout engine is tested fast and from the
// outside: these tests use only the exported API of package deploy.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/gantry-dev/gantry/internal/fakedb"
	"github.com/gantry-dev/gantry/internal/memdriver"
	"github.com/gantry-dev/gantry/internal/memrouter"
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
	srcs  map[string]gantry.Artifact  // commit-file tarballs by their gantry.yml
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

// Close stops the harness's instances and closes its store (the test's
// cleanup does it too); for tests that go through many harnesses.
func (h *Harness) Close() {
	h.Driver.Close()
	h.Slots.Close()
	h.Store.Close()
	if c, ok := h.Router.(interface{ Close() error }); ok {
		c.Close()
	}
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
		PersistRoot:  filepath.Join(h.Dir, "persist"),
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
