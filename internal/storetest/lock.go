package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func (f *fixture) mustAcquire(l *gantry.Lock) {
	f.t.Helper()
	mustOK(f.t, "AcquireLock by "+l.Holder, f.s.AcquireLock(f.ctx, l))
}

var lockTests = []test{
	{"AcquireFind", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		want := &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy", Reason: "W1",
			DeploymentID: 12, Since: T0.Add(-time.Minute), Expires: T0.Add(time.Hour)}
		f.mustAcquire(want)
		got, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock", err)
		sameJSON(t, "FindLock", got, want)
		_, err = f.s.FindLock(f.ctx, "shop", "prod")
		wantCode(t, "FindLock of an unlocked environment", err, gantry.ENOTFOUND)
	}},
	{"SetDeployment", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy 1.0.0"})
		mustOK(t, "SetLockDeployment", f.s.SetLockDeployment(f.ctx, "shop", "test", "alice", 42))
		got, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock", err)
		if got.DeploymentID != 42 {
			t.Errorf("DeploymentID after SetLockDeployment: got %d, want 42", got.DeploymentID)
		}
		err = f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Holder: "bob", Operation: "deploy"})
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "(deploy 1.0.0 #42)") {
			t.Errorf("conflict message %q does not name deployment #42", msg)
		}
		err = f.s.SetLockDeployment(f.ctx, "shop", "test", "bob", 43)
		wantCode(t, "SetLockDeployment by another holder", err, gantry.ENOTFOUND)
		err = f.s.SetLockDeployment(f.ctx, "shop", "prod", "alice", 43)
		wantCode(t, "SetLockDeployment of an unlocked environment", err, gantry.ENOTFOUND)
	}},
	{"Conflict", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		l := &gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy", DeploymentID: 12}
		f.mustAcquire(l)
		if !l.Since.Equal(T0) {
			t.Errorf("Since after AcquireLock: got %v, want the store's clock %v", l.Since, T0)
		}
		f.clock.Advance(time.Hour)
		for _, holder := range []string{"bob", "alice"} { // not reentrant either
			err := f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Holder: holder, Operation: "manual"})
			wantCode(t, "AcquireLock of a locked environment by "+holder, err, gantry.ECONFLICT)
			want := `environment "test" of app "shop" is locked by alice (deploy #12) since 2026-11-22T01:02:03Z`
			if got := gantry.ErrorMessage(err); got != want {
				t.Errorf("conflict message:\ngot  %s\nwant %s", got, want)
			}
		}
		got, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock", err)
		if got.Holder != "alice" {
			t.Errorf("FindLock after refused acquires: got holder %q, want alice", got.Holder)
		}
	}},
	{"ConflictReason", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "prod", Holder: "carol", Operation: "manual", Reason: "release freeze"})
		err := f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "prod", Holder: "bob", Operation: "deploy"})
		wantCode(t, "AcquireLock", err, gantry.ECONFLICT)
		for _, want := range []string{"carol", "manual", "release freeze", "2026-11-22T01:02:03Z"} {
			if msg := gantry.ErrorMessage(err); !strings.Contains(msg, want) {
				t.Errorf("conflict message %q: want it to contain %q", msg, want)
			}
		}
	}},
	{"Expiry", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy", Expires: T0.Add(time.Minute)})
		bob := &gantry.Lock{App: "shop", Env: "test", Holder: "bob", Operation: "deploy"}
		f.clock.Advance(time.Minute) // at Expires exactly: still held
		wantCode(t, "AcquireLock at the expiry instant", f.s.AcquireLock(f.ctx, bob), gantry.ECONFLICT)
		_, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock at the expiry instant", err)
		f.clock.Advance(time.Nanosecond)
		_, err = f.s.FindLock(f.ctx, "shop", "test")
		wantCode(t, "FindLock after expiry", err, gantry.ENOTFOUND)
		f.mustAcquire(bob)
		got, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock", err)
		want := &gantry.Lock{App: "shop", Env: "test", Holder: "bob", Operation: "deploy", Since: T0.Add(time.Minute + time.Nanosecond)}
		sameJSON(t, "lock replacing an expired one", got, want)
	}},
	{"Release", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy"})
		wantCode(t, "ReleaseLock by another holder", f.s.ReleaseLock(f.ctx, "shop", "test", "bob", false), gantry.ECONFLICT)
		_, err := f.s.FindLock(f.ctx, "shop", "test")
		mustOK(t, "FindLock after a refused release", err)
		mustOK(t, "ReleaseLock by the holder", f.s.ReleaseLock(f.ctx, "shop", "test", "alice", false))
		_, err = f.s.FindLock(f.ctx, "shop", "test")
		wantCode(t, "FindLock after release", err, gantry.ENOTFOUND)
		wantCode(t, "ReleaseLock again", f.s.ReleaseLock(f.ctx, "shop", "test", "alice", false), gantry.ENOTFOUND)
		wantCode(t, "ReleaseLock with force, unlocked", f.s.ReleaseLock(f.ctx, "shop", "test", "bob", true), gantry.ENOTFOUND)
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "test", Holder: "alice", Operation: "deploy"})
		mustOK(t, "ReleaseLock with force", f.s.ReleaseLock(f.ctx, "shop", "test", "bob", true))
		f.mustAcquire(&gantry.Lock{App: "shop", Env: "test", Holder: "bob", Operation: "deploy"})
	}},
	{"ReleaseExpired", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for _, env := range []string{"test", "prod"} {
			f.mustAcquire(&gantry.Lock{App: "shop", Env: env, Holder: "alice", Operation: "deploy", Expires: T0.Add(time.Second)})
		}
		f.clock.Advance(time.Minute)
		wantCode(t, "ReleaseLock of another's expired lock", f.s.ReleaseLock(f.ctx, "shop", "test", "bob", false), gantry.ENOTFOUND)
		// The holder finishing after the TTL still releases cleanly.
		mustOK(t, "ReleaseLock of one's own expired lock", f.s.ReleaseLock(f.ctx, "shop", "prod", "alice", false))
	}},
	{"Scope", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		for _, l := range []*gantry.Lock{
			{App: "shop", Env: "test", Holder: "alice", Operation: "deploy"},
			{App: "shop", Env: "prod", Holder: "bob", Operation: "deploy"},
			{App: "api", Env: "test", Holder: "carol", Operation: "deploy"},
		} {
			f.mustAcquire(l)
		}
		for _, tt := range []struct{ app, env, holder string }{{"shop", "test", "alice"}, {"shop", "prod", "bob"}, {"api", "test", "carol"}} {
			got, err := f.s.FindLock(f.ctx, tt.app, tt.env)
			mustOK(t, "FindLock", err)
			if got.Holder != tt.holder {
				t.Errorf("FindLock(%s, %s): got holder %q, want %q", tt.app, tt.env, got.Holder, tt.holder)
			}
		}
	}},
	{"Invalid", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		err := f.s.AcquireLock(f.ctx, &gantry.Lock{App: "nope", Env: "test", Holder: "alice", Operation: "deploy"})
		wantCode(t, "AcquireLock for an unknown app", err, gantry.ENOTFOUND)
		err = f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Operation: "deploy"})
		wantCode(t, "AcquireLock without a holder", err, gantry.EINVALID)
	}},
	{"Concurrent", func(t *testing.T, f *fixture) {
		// Invariant 5: of simultaneous deployments to one environment,
		// exactly one proceeds and every other gets ECONFLICT.
		f.mustCreateApp("shop")
		const rounds, contenders = 5, 4
		for round := range rounds {
			var (
				start sync.WaitGroup
				done  sync.WaitGroup
				mu    sync.Mutex
				won   []string
			)
			start.Add(1)
			for i := range contenders {
				holder := string(rune('a' + i))
				done.Go(func() {
					start.Wait()
					err := f.s.AcquireLock(f.ctx, &gantry.Lock{App: "shop", Env: "test", Holder: holder, Operation: "deploy"})
					if err == nil {
						mu.Lock()
						won = append(won, holder)
						mu.Unlock()
					} else if gantry.ErrorCode(err) != gantry.ECONFLICT {
						t.Errorf("round %d: AcquireLock by %s: got %v, want success or ECONFLICT", round, holder, err)
					}
				})
			}
			start.Done()
			done.Wait()
			if len(won) != 1 {
				t.Fatalf("round %d: got winners %q, want exactly one", round, won)
			}
			got, err := f.s.FindLock(f.ctx, "shop", "test")
			mustOK(t, "FindLock", err)
			if got.Holder != won[0] {
				t.Errorf("round %d: FindLock: got holder %q, want the winner %q", round, got.Holder, won[0])
			}
			mustOK(t, "ReleaseLock", f.s.ReleaseLock(f.ctx, "shop", "test", won[0], false))
		}
	}},
}
