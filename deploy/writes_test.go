package deploy_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
)

// writeLog is a gantry.Store that names, in order, every write the engine
// makes through it (each one a synced commit of the SQLite store); reads
// pass through unrecorded.
type writeLog struct {
	gantry.Store
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) add(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, name)
}

func (w *writeLog) names() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func (w *writeLog) AcquireLock(ctx context.Context, l *gantry.Lock) error {
	w.add("AcquireLock")
	return w.Store.AcquireLock(ctx, l)
}

func (w *writeLog) ReleaseLock(ctx context.Context, app, env, holder string, force bool) error {
	w.add("ReleaseLock")
	return w.Store.ReleaseLock(ctx, app, env, holder, force)
}

func (w *writeLog) SetLockDeployment(ctx context.Context, app, env, holder string, id int64) error {
	w.add("SetLockDeployment")
	return w.Store.SetLockDeployment(ctx, app, env, holder, id)
}

func (w *writeLog) CreateDeployment(ctx context.Context, d *gantry.Deployment) error {
	w.add("CreateDeployment")
	return w.Store.CreateDeployment(ctx, d)
}

func (w *writeLog) StartDeployment(ctx context.Context, d *gantry.Deployment) error {
	w.add("StartDeployment")
	return w.Store.StartDeployment(ctx, d)
}

func (w *writeLog) UpdateDeployment(ctx context.Context, d *gantry.Deployment) error {
	w.add("UpdateDeployment")
	return w.Store.UpdateDeployment(ctx, d)
}

func (w *writeLog) AppendStep(ctx context.Context, id int64, s *gantry.Step) error {
	w.add("AppendStep " + s.Name)
	return w.Store.AppendStep(ctx, id, s)
}

func (w *writeLog) UpdateStep(ctx context.Context, id int64, s *gantry.Step) error {
	w.add("UpdateStep " + s.Name)
	return w.Store.UpdateStep(ctx, id, s)
}

func (w *writeLog) PutEnvironment(ctx context.Context, env *gantry.Environment) error {
	w.add("PutEnvironment")
	return w.Store.PutEnvironment(ctx, env)
}

func (w *writeLog) CreateApproval(ctx context.Context, a *gantry.Approval) error {
	w.add("CreateApproval")
	return w.Store.CreateApproval(ctx, a)
}

func (w *writeLog) PutRoutes(ctx context.Context, t *gantry.RouteTable) error {
	w.add("PutRoutes")
	return w.Store.PutRoutes(ctx, t)
}

// TestWarmRollbackWritesBeforeSwitch counts the synced writes a warm
// rollback makes before its switch acts, the part of `gantry rollback` on
// the way to traffic: the lock; the deployment's start (its record, its
// classify step, done, as a step that only records is, and the lock's name
// for it, in one transaction); the switch's journal entry, which must be
// on disk before the switch acts. Each journal event is on disk when it
// is reported (a crash there leaves the journal ending with it). A write
// added there slows every rollback; one that may come after the traffic
// moved belongs there.
func TestWarmRollbackWritesBeforeSwitch(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	log := &writeLog{Store: h.Store}
	o := h.NewOrchestrator()
	o.Store = log
	var before []string
	o.OnStep = func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "switch" && s.State == gantry.StepStarted {
			before = log.names()
		}
	}
	d, err := o.Rollback(h.Ctx, gantry.RollbackRequest{App: "shop", Env: "test", Actor: "dev"}, nil)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if d.Strategy != "flip" {
		t.Fatalf("rollback strategy %q, want a flip back to the warm slot", d.Strategy)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Fatalf("after the rollback %s is active, want %s", got, v1.ID)
	}
	want := []string{"AcquireLock", "StartDeployment", "AppendStep switch"}
	if strings.Join(before, ", ") != strings.Join(want, ", ") {
		t.Errorf("writes before the switch acted: %v, want %v", before, want)
	}
	if steps := h.Steps(t, d.ID); len(steps) < 2 || steps[0] != "classify" || steps[1] != "switch" {
		t.Errorf("journal %v, want classify then switch", steps)
	}
	if n := len(log.names()); n <= len(want) {
		t.Errorf("%d writes in all, want the switch's result and the outcome after the switch too", n)
	}
}

// TestRecordOnlyStepsWrittenWithTheRecord: the steps that only record (a
// break-glass reason, the class of the change) are written done with the
// deployment's record, in its one transaction, and never again; progress
// still reports each as started and done, in order, and OnStep, which sees
// the journal's writes, sees each once, done, before the first step that
// acts.
func TestRecordOnlyStepsWrittenWithTheRecord(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	log := &writeLog{Store: h.Store}
	o := h.NewOrchestrator()
	o.Store = log
	var written []string
	o.OnStep = func(d *gantry.Deployment, s gantry.Step) { written = append(written, s.Name+" "+s.State) }
	var reported []string
	progress := func(e gantry.Event) {
		if e.Step == "break-glass" || e.Step == "classify" {
			reported = append(reported, e.Step+" "+e.State+": "+e.Message)
		}
	}
	req := gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev", BreakGlass: "incident 42"}
	d, err := o.Deploy(h.Ctx, req, progress)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	for _, w := range log.names() {
		if strings.HasSuffix(w, " break-glass") || strings.HasSuffix(w, " classify") {
			t.Errorf("write %q: a step that only records is written with the deployment's record alone", w)
		}
	}
	want := []string{
		"break-glass started: incident 42", "break-glass done: by dev: incident 42",
		"classify started: deployment: (nothing) → 1.0.0", "classify done: deployment: (nothing) → 1.0.0",
	}
	if strings.Join(reported, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress reported\n%s\nwant\n%s", strings.Join(reported, "\n"), strings.Join(want, "\n"))
	}
	if len(written) < 3 || written[0] != "break-glass done" || written[1] != "classify done" || written[2] != "verify-artifacts started" {
		t.Errorf("journal events seen by OnStep %v, want break-glass done, classify done, then verify-artifacts started", written)
	}
	stored, err := h.Store.FindDeployment(h.Ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	steps := stored.Steps
	if len(steps) < 2 || steps[0].Name != "break-glass" || steps[0].State != gantry.StepDone || steps[0].Detail != "by dev: incident 42" ||
		steps[1].Name != "classify" || steps[1].State != gantry.StepDone || !steps[1].EndedAt.Equal(stored.CreatedAt) {
		t.Errorf("journal starts %+v, want break-glass and classify, done when the deployment was created (%s)", steps[:min(2, len(steps))], stored.CreatedAt)
	}
}
