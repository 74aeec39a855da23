// Package storetest is the test suite that every gantry.Store implementation
// runs (sqlite/, postgres/), so that the orchestrator can rely on one
// behaviour whatever the backend: codes, ordering, paging, lock expiry and
// atomicity, durability across a reopen.
//
// It is imported by test files only; it must never be compiled into the
// binary, and it must test only through the gantry.Store interface.
//
// Contract details that the interface's comments leave open, and that this
// suite pins down:
//   - creators set a zero CreatedAt (Since for locks, StartedAt for steps) to
//     the store's clock; UpdateDeployment writes State, Error and FinishedAt
//     only;
//   - "newest first" for releases is by CreatedAt, ties broken by insertion
//     order; for deployments it is by ID, and IDs increase;
//   - list limits default to 50 and are capped at 1000;
//   - ListEnvironments("") lists every app's environments, by app then name;
//   - a lock is held while Expires is zero or not before now; FindLock and
//     ReleaseLock treat an expired lock of another holder as no lock;
//   - the lock conflict message has the form
//     `environment "test" of app "shop" is locked by alice (deploy #12) since 2026-11-22T01:02:03Z`.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// Opener opens the store named db, reading the time from now.
//
// The suite gives every subtest its own db name and opens a name again after
// closing it, to check that data survives: the same name must reach the same
// data, and a name not seen before an empty store. Names match
// [a-z0-9_]{1,48}, so they can name a file, a database or a schema. The
// suite closes every store it opens; subtests run in parallel.
type Opener func(t *testing.T, db string, now func() time.Time) gantry.Store

// T0 is where every subtest's clock starts.
var T0 = time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)

// Run runs the suite against the stores that open returns.
func Run(t *testing.T, open Opener) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"App", appTests},
		{"Release", releaseTests},
		{"Environment", environmentTests},
		{"Deployment", deploymentTests},
		{"Step", stepTests},
		{"Period", periodTests},
		{"Lock", lockTests},
		{"Workflow", workflowTests},
		{"Store", storeTests},
		{"Lease", leaseTests},
	}
	var n atomic.Int64
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					db := fmt.Sprintf("st%03d_%s_%s", n.Add(1), g.name, tc.name)
					tc.fn(t, newFixture(t, open, dbName(db)))
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, f *fixture)
}

// dbName lowercases s and keeps it to what Opener promises.
func dbName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, s)
	return s[:min(len(s), 48)]
}

// fixture is one subtest's store, clock and context.
type fixture struct {
	t     *testing.T
	open  Opener
	db    string
	clock *clock
	ctx   context.Context
	s     gantry.Store
}

func newFixture(t *testing.T, open Opener, db string) *fixture {
	f := &fixture{t: t, open: open, db: db, clock: &clock{t: T0}, ctx: t.Context()}
	f.s = f.mustOpen()
	return f
}

func (f *fixture) mustOpen() gantry.Store {
	f.t.Helper()
	s := f.open(f.t, f.db, f.clock.Now)
	if s == nil {
		f.t.Fatalf("open %s: got a nil store", f.db)
	}
	var once sync.Once
	f.t.Cleanup(func() { once.Do(func() { s.Close() }) })
	return s
}

// reopen closes the store and opens the same db again.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("Close: %v", err)
	}
	f.s = f.mustOpen()
}

// clock is a subtest's time: it moves only when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// wantCode fails the test unless err has the code want; what names the call.
func wantCode(tb testing.TB, what string, err error, want string) {
	tb.Helper()
	if got := gantry.ErrorCode(err); got != want {
		tb.Errorf("%s: got error %v (code %q), want code %q", what, err, got, want)
	}
}

// mustOK fails the test now when err is not nil.
func mustOK(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// sameJSON compares got and want by their JSON form, which is what the API
// shows: time instants and zones, bytes, maps and nil-versus-empty all count.
func sameJSON(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, err := json.MarshalIndent(got, "", "  ")
	mustOK(tb, "marshal got", err)
	w, err := json.MarshalIndent(want, "", "  ")
	mustOK(tb, "marshal want", err)
	if string(g) != string(w) {
		tb.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

func (f *fixture) mustCreateApp(name string) *gantry.App {
	f.t.Helper()
	a := &gantry.App{Name: name, Repo: "https://git.example/" + name + ".git", CreatedAt: f.clock.Now()}
	mustOK(f.t, "CreateApp "+name, f.s.CreateApp(f.ctx, a))
	return a
}

func (f *fixture) mustCreateRelease(r *gantry.Release) *gantry.Release {
	f.t.Helper()
	mustOK(f.t, "CreateRelease "+r.ID, f.s.CreateRelease(f.ctx, r))
	return r
}

func (f *fixture) mustCreateDeployment(app, env, state string) *gantry.Deployment {
	f.t.Helper()
	d := &gantry.Deployment{App: app, Env: env, Kind: gantry.KindDeploy, ReleaseID: "r1", Actor: "alice",
		State: state, CreatedAt: f.clock.Now()}
	mustOK(f.t, "CreateDeployment", f.s.CreateDeployment(f.ctx, d))
	return d
}

// ids returns the deployments' IDs, for comparing orders.
func ids(ds []*gantry.Deployment) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func releaseIDs(rs []*gantry.Release) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
