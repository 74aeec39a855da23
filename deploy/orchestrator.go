// Package deploy is the orchestrator: it plans and runs deployments as
// journaled steps (deploy, promote, rollback), starts a release's services
// by order group (pausing between groups when asked), holds the environment lock,
// applies the promotion policy, keeps the previous release warm, and brings
// environments back to a consistent state after a crash.
//
// It talks to storage, runtimes and the router only through the root
// package's interfaces, and must not import their implementations.
package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Orchestrator runs deployments. Its fields are set by the caller (cmd/gantry).
type Orchestrator struct {
	Store     gantry.Store
	Router    gantry.Router
	Artifacts gantry.ArtifactStore
	// Drivers maps a runtime driver name ("process", "docker", …) to the driver.
	Drivers map[string]gantry.Driver
	// Decode turns a release's gantry.yml into a Manifest.
	Decode func(filename string, data []byte) (*gantry.Manifest, error)
	// RouterURL is where the router's HTTP listener answers (http://127.0.0.1:8080),
	// used to run verify checks through a candidate's preview host.
	RouterURL string
	// Secret resolves a secret reference to its value; ok is false when unset.
	Secret func(name string) (value string, ok bool)
	// SecretFor, when set, resolves a secret of one environment and takes
	// precedence over Secret.
	SecretFor func(app, env, name string) (value string, ok bool)
	Logger    *slog.Logger
	Now       func() time.Time

	// HTTPClient probes instances and runs verify checks.
	HTTPClient *http.Client
	// Databases applies migrations around deploys; nil when the server has
	// no database support. SnapshotRoot holds the databases' snapshots.
	Databases    gantry.DatabaseChanger
	SnapshotRoot string
	// PersistRoot holds the environments' persistent directories
	// (gantry.PersistDir); empty: this server keeps none, and a release
	// that declares one is refused.
	PersistRoot string
	// RunMigration, when set, runs an app's own migration command instead
	// of a shell in the release's files (tests: a fake database migrates).
	// vars are the environment's variables and secrets, DATABASE_URL included.
	RunMigration func(ctx context.Context, rel *gantry.Release, command string, vars map[string]string) (string, error)
	// Hooks runs the manifest's hooks and notifications; nil runs none.
	Hooks gantry.HookRunner
	// OnStep observes the journal: it is called once a step is written
	// (state "started", before the step acts) and once its result is; a
	// step that only records (RecordOnly) is written once, done.
	OnStep func(d *gantry.Deployment, s gantry.Step)
	// OnFinish observes a deployment once its outcome is recorded and
	// before its lock is freed: the last moment a crash can interrupt it.
	OnFinish func(d *gantry.Deployment)
	// RecordRetry bounds how long a record the store refuses (a full disk)
	// is tried again before the deployment is ended unsettled
	// (DefaultRecordRetry when zero).
	RecordRetry time.Duration
	// Leader, when set, is this server's hold on the lease of a store
	// shared by several servers: operations run only while it holds the
	// lease, and their writes carry its fencing token. Nil: this server
	// alone uses the store and always runs them.
	Leader *Leader

	mu         sync.Mutex
	running    map[int64]context.CancelFunc
	canaries   map[int64]*canaryRun // by deployment, while its canary runs
	queues     map[string][]*waiter // per app/env, in arrival order
	nextWaiter int64
	// unsettled are deployments whose records the store refused: each
	// keeps its lock until Settle has made the records follow what serves.
	unsettled map[int64]*unsettledRun
	// previewHolds: per app, held while a preview is counted and
	// recorded (holdPreviews).
	previewHolds map[string]*sync.Mutex
	// manifests are the releases' manifests decoded last (manifestOf).
	manifests manifestCache
}

func (o *Orchestrator) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Orchestrator) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (o *Orchestrator) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func (o *Orchestrator) driver(spec *gantry.EnvironmentSpec) (gantry.Driver, error) {
	name := spec.Runtime.Driver
	if name == "" {
		name = "process"
	}
	d, ok := o.Drivers[name]
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "runtime driver %q is not available on this server", name)
	}
	return d, nil
}

// manifestOf decodes a release's manifest. A release never changes, so
// the manifests decoded last are kept and shared (decoding one takes a
// rollback about as long as one of its synced writes): the engine reads a
// manifest and never changes it; what needs another one makes a copy
// (restart's mix of releases, a renamed environment's spec).
func (o *Orchestrator) manifestOf(r *gantry.Release) (*gantry.Manifest, error) {
	if m := o.manifests.get(r.Manifest); m != nil {
		return m, nil
	}
	m, err := o.Decode("gantry.yml@"+short(r.Commit), r.Manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest of release %s: %w", r.ID, err)
	}
	o.manifests.put(r.Manifest, m)
	return m, nil
}

// manifestCache holds the last manifestCacheSize manifests decoded, by
// their text.
type manifestCache struct {
	mu     sync.Mutex
	byText map[string]*gantry.Manifest
	order  []string // oldest first
}

const manifestCacheSize = 32

func (c *manifestCache) get(text []byte) *gantry.Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byText[string(text)]
}

func (c *manifestCache) put(text []byte, m *gantry.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byText == nil {
		c.byText = map[string]*gantry.Manifest{}
	}
	key := string(text)
	if _, ok := c.byText[key]; ok {
		return
	}
	if len(c.order) == manifestCacheSize {
		delete(c.byText, c.order[0])
		c.order = c.order[1:]
	}
	c.byText[key] = m
	c.order = append(c.order, key)
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// previewHosts derives the preview host names of an environment's hosts.
func previewHosts(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if strings.HasPrefix(h, "*.") {
			continue
		}
		out = append(out, "preview."+h)
	}
	return out
}

// track registers a running deployment so Close can cancel it.
func (o *Orchestrator) track(id int64, cancel context.CancelFunc) func() {
	o.mu.Lock()
	if o.running == nil {
		o.running = map[int64]context.CancelFunc{}
	}
	o.running[id] = cancel
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.running, id)
		o.mu.Unlock()
	}
}

// secretValue resolves one secret of an environment.
func (o *Orchestrator) secretValue(app, env, name string) (string, bool) {
	if o.SecretFor != nil {
		return o.SecretFor(app, env, name)
	}
	if o.Secret != nil {
		return o.Secret(name)
	}
	return "", false
}

// manifestOfRelease returns the manifest of an app's release, or nil when
// the release or its manifest cannot be read: for the best-effort work
// (stopping, reaping, recovering) that must go on without it.
func (o *Orchestrator) manifestOfRelease(ctx context.Context, app, releaseID string) *gantry.Manifest {
	if releaseID == "" {
		return nil
	}
	rel, err := o.Store.FindRelease(ctx, app, releaseID)
	if err != nil {
		return nil
	}
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil
	}
	return m
}
