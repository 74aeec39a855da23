package deploy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// dyingDriver is the in-memory driver of a server that dies right after
// its driver started the nth instance, before the orchestrator saved it.
type dyingDriver struct {
	*memdriver.Driver
	n       int32
	started atomic.Int32
	died    chan struct{}
}

func (d *dyingDriver) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	inst, err := d.Driver.Start(ctx, spec)
	if err == nil && d.started.Add(1) == d.n {
		close(d.died)
		select {} // the process is gone: the handle is never saved
	}
	return inst, err
}

// TestRecoverFindsInstanceStartedBeforeCrash kills the server between
// starting a candidate's instance and saving its handle (fact 3 of issue
// 12): at the next start recovery finds it by its identity, and no
// instance of the environment runs unknown to the record.
func TestRecoverFindsInstanceStartedBeforeCrash(t *testing.T) {
	for _, strategy := range []string{gantry.StrategyBlueGreen, gantry.StrategyRestart} {
		t.Run(strategy, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := Simple("shop")
			v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
			v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
			h.MustDeploy(t, "shop", "test", v1)
			o := h.NewOrchestrator()
			dd := &dyingDriver{Driver: h.Driver, n: 1, died: make(chan struct{})}
			o.Drivers["process"] = dd
			go o.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev", Strategy: strategy}, nil)
			select {
			case <-dd.died:
			case <-time.After(10 * time.Second):
				t.Fatal("the deploy never started an instance")
			}
			recovered := h.NewOrchestrator()
			if err := recovered.Recover(h.Ctx); err != nil {
				t.Fatal(err)
			}
			e := h.MustEnv(t, "shop", "test")
			known := map[string]bool{}
			for _, s := range e.Slots {
				for _, inst := range s.Instances {
					known[inst.Handle] = true
				}
			}
			var orphans []string
			for _, r := range h.Driver.RunningIn("shop", "test") {
				if !known[r.Handle] {
					orphans = append(orphans, r.Slot+"/"+r.Service+"@"+r.Addr)
				}
			}
			if len(orphans) > 0 {
				t.Fatalf("after recovery %d instances run unknown to the record: %v", len(orphans), orphans)
			}
			if got := h.Serving(t, "shop", "test"); len(got) == 0 {
				t.Fatal("nothing serves after recovery")
			}
			h.MustConsistent(t, "shop", "test")
			h.MustNoLock(t, "shop", "test")
			ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 1})
			if !strings.Contains(ds[0].Error, "adopted") && !strings.Contains(ds[0].Error, "stopped") {
				t.Errorf("the recovered deployment's outcome %q does not say what became of the unrecorded instance", ds[0].Error)
			}
			h.O = recovered
			h.MustDeploy(t, "shop", "test", v2)
			h.MustConsistent(t, "shop", "test")
		})
	}
}

// TestRecoverKeepsInstancesOfRenamedEnvironment: instances keep the name
// of the environment they were started in; after `env rename test
// testold` (and testnew → test) they belong to testold's record, and a
// restart must not take them for unknown instances of the new test.
func TestRecoverKeepsInstancesOfRenamedEnvironment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	if _, err := h.O.Clone(h.Ctx, gantry.CloneRequest{App: "shop", Src: "test", Dst: "testnew", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.O.Rename(h.Ctx, gantry.RenameRequest{App: "shop", Old: "testnew", New: "test", DisplaceTo: "testold", Actor: "dev"}, nil); err != nil {
		t.Fatal(err)
	}
	handles := func() string {
		var hs []string
		for _, r := range h.Driver.Running() {
			hs = append(hs, r.Env+"/"+r.Handle)
		}
		return strings.Join(hs, " ")
	}
	before := handles()
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if after := handles(); after != before {
		t.Errorf("recovery replaced instances of the renamed environments: ran %s, runs %s", before, after)
	}
	h.MustConsistent(t, "shop", "testold")
	h.MustConsistent(t, "shop", "test")
}
