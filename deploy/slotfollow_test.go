package deploy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// followingSlots is the memdriver's slot runtime whose instances the test
// replaces, as a cluster replaces pods: a fake of the Kubernetes driver's
// SlotFollower (tested against a real cluster in e2e/kubernetes). fresh,
// when set, is what SlotInstances reports; err, its error.
type followingSlots struct {
	*memdriver.Slots
	mu    sync.Mutex // guards fresh
	fresh []gantry.Instance
	err   error
	// watch, when set, is WatchSlots.
	watch func(ctx context.Context, changed func()) error
}

var _ gantry.SlotFollower = (*followingSlots)(nil)

func (f *followingSlots) SlotInstances(ctx context.Context, ref gantry.SlotRef) ([]gantry.Instance, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fresh != nil {
		return f.fresh, nil
	}
	return f.Slots.SlotInstances(ref.App, ref.Env, ref.Slot), nil
}

func (f *followingSlots) WatchSlots(ctx context.Context, ref gantry.SlotRef, changed func()) error {
	if f.watch != nil {
		return f.watch(ctx, changed)
	}
	<-ctx.Done()
	return nil
}

// followedEnv deploys a release of two instances to test behind Gantry's
// router on followingSlots, and returns blue's instances.
func followedEnv(t *testing.T) (*Harness, *followingSlots, []gantry.Instance) {
	h := NewHarness(t, Options{})
	f := &followingSlots{Slots: h.Slots}
	h.O.Drivers["kubernetes"] = f
	app := k8s()
	app.Envs[0].Runtime = "kubernetes, traffic: router"
	h.MustDeploy(t, "shop", "test", h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true}))
	return h, f, h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue].Instances
}

// TestFollowSlotsWatchRestarts runs the reconciler as the server does: a
// watch that fails is started again, and its events make the router
// follow.
func TestFollowSlotsWatchRestarts(t *testing.T) {
	h, f, blue := followedEnv(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()

	var calls atomic.Int32
	fresh := []gantry.Instance{blue[0], {Service: "web", Index: 1, Addr: up.Listener.Addr().String()}}
	replaced := make(chan struct{})
	f.watch = func(ctx context.Context, changed func()) error {
		if calls.Add(1) == 1 {
			return errors.New("the watch broke")
		}
		select {
		case <-replaced:
		default:
			f.mu.Lock()
			f.fresh = fresh // the cluster replaced a pod
			f.mu.Unlock()
			close(replaced)
			changed()
		}
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(h.Ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.O.FollowSlots(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	want := []string{blue[0].Addr, up.Listener.Addr().String()}
	slices.Sort(want)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sts, err := h.Mem.Status(h.Ctx)
		if err == nil && len(sts) == 1 && activeAddrs(sts[0]) == strings.Join(want, ",") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router did not follow within 10s (watch started %d times): %+v", calls.Load(), sts)
		}
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("the watch was started %d times, want again after its error", n)
	}
}

func activeAddrs(st gantry.RouteStatus) string {
	var out []string
	for _, ts := range st.Active {
		out = append(out, ts.Addr)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// TestFollowSlotsBehindRouter is the reconciler that keeps Gantry's router
// in front of a slot runtime (runtime.traffic: router) on the instances
// that serve: a not-ready instance leaves the route, a new one joins it
// once its health check passes, and the environment records them; an
// error of the runtime, or a service with no ready instance, changes
// nothing; an operation holding the environment's lock is waited for.
func TestFollowSlotsBehindRouter(t *testing.T) {
	h, f, blue := followedEnv(t)
	if len(blue) != 2 {
		t.Fatalf("blue has %d instances, want 2", len(blue))
	}
	deploys := func() int { return len(h.Mem.Calls("deploy")) }
	routed := func() []string {
		sts, err := h.Mem.Status(h.Ctx)
		if err != nil || len(sts) != 1 {
			t.Fatalf("router status: %v %v", sts, err)
		}
		var out []string
		for _, ts := range sts[0].Active {
			out = append(out, ts.Addr)
		}
		slices.Sort(out)
		return out
	}
	recorded := func() []string {
		var out []string
		for _, in := range h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue].Instances {
			if in.Addr != "" {
				out = append(out, in.Addr)
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(a ...string) []string { slices.Sort(a); return a }
	n := deploys()

	// Nothing changed: nothing to do.
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err != nil || deploys() != n {
		t.Fatalf("follow with nothing changed: %v, %d router deploys, want none", err, deploys()-n)
	}

	// The runtime cannot say: nothing changes.
	f.err = errors.New("the API server is away")
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err == nil || deploys() != n {
		t.Errorf("follow with the runtime failing: %v, %d router deploys; want the error and none", err, deploys()-n)
	}
	f.err = nil

	// No instance ready (all replaced at once, none up yet): the route
	// keeps its targets rather than having none.
	notReady := []gantry.Instance{{Service: "web", Index: 0}, {Service: "web", Index: 1}}
	f.fresh = notReady
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err != nil || deploys() != n {
		t.Errorf("follow with no instance ready: %v, %d router deploys, want none", err, deploys()-n)
	}
	if got := routed(); !slices.Equal(got, sorted(blue[0].Addr, blue[1].Addr)) {
		t.Errorf("route with no instance ready: %v, want the old targets", got)
	}
	if got := recorded(); !slices.Equal(got, sorted(blue[0].Addr, blue[1].Addr)) {
		t.Errorf("record with no instance ready: %v, want the old instances", got)
	}

	// One goes not ready: it leaves the route and the record.
	f.fresh = []gantry.Instance{blue[0], {Service: "web", Index: 1}}
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err != nil {
		t.Fatal(err)
	}
	if got := routed(); !slices.Equal(got, []string{blue[0].Addr}) {
		t.Errorf("route after an instance went not ready: %v, want %s", got, blue[0].Addr)
	}
	if got := recorded(); !slices.Equal(got, []string{blue[0].Addr}) {
		t.Errorf("record after an instance went not ready: %v, want %s", got, blue[0].Addr)
	}

	// Its replacement does not pass its health check yet: not routed.
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer dead.Close()
	f.fresh = []gantry.Instance{blue[0], {Service: "web", Index: 1, Addr: dead.Listener.Addr().String()}}
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err == nil {
		t.Errorf("follow to an instance failing its health check: no error")
	}
	if got := routed(); !slices.Equal(got, []string{blue[0].Addr}) {
		t.Errorf("route after a replacement failed its check: %v, want %s", got, blue[0].Addr)
	}

	// While an operation holds the environment's lock, the follow waits.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()
	f.fresh = []gantry.Instance{blue[0], {Service: "web", Index: 1, Addr: up.Listener.Addr().String()}}
	if err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "dev", Operation: "manual"}); err != nil {
		t.Fatal(err)
	}
	n = deploys()
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err != nil || deploys() != n {
		t.Errorf("follow while locked: %v, %d router deploys, want none", err, deploys()-n)
	}
	if err := h.Store.ReleaseLock(h.Ctx, "shop", "test", "dev", false); err != nil {
		t.Fatal(err)
	}

	// Once it is free, the new instance joins.
	if err := h.O.FollowSlotsOnce(h.Ctx, "shop", "test", f); err != nil {
		t.Fatal(err)
	}
	want := sorted(blue[0].Addr, up.Listener.Addr().String())
	if got := routed(); !slices.Equal(got, want) {
		t.Errorf("route after the replacement came up: %v, want %v", got, want)
	}
	if got := recorded(); !slices.Equal(got, want) {
		t.Errorf("record after the replacement came up: %v, want %v", got, want)
	}
}
