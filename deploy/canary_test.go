package deploy_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
)

// canaryApp is Simple with prod on strategy canary; test is blue-green.
func canaryApp(steps string) App {
	app := Simple("shop")
	app.Envs[1] = Env{Name: "prod", Strategy: gantry.StrategyCanary, Canary: steps}
	return app
}

// sideFigures are n requests with errs 5xx, latencies ms apart from a base.
func sideFigures(n, errs int64, baseMs float64) gantry.SlotFigures {
	f := gantry.SlotFigures{Requests: n, Errors5xx: errs}
	for i := int64(0); i < n; i++ {
		f.LatencyMicros = append(f.LatencyMicros, int64((baseMs+float64(i%9)*0.2)*1000))
	}
	return f
}

// canaryDeploy puts v1 on prod, then deploys v2 with the canary; figures
// make up each step's traffic.
func canaryDeploy(t *testing.T, h *Harness, app App, figures func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures)) (*gantry.Deployment, error) {
	t.Helper()
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "prod", v1)
	h.Mem.ResetCalls()
	h.Mem.SetCanaryFigures(figures)
	h.Clock.SetTick(time.Second)
	return h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "dev"}, nil)
}

func canaryCalls(h *Harness) string {
	var out []string
	for _, c := range h.Mem.Calls("set-canary", "clear-canary", "deploy") {
		s := c.Op
		if c.Op == "set-canary" {
			s += ":" + strconv.Itoa(c.Weight)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func stepDetails(t *testing.T, h *Harness, id int64, name string) []string {
	t.Helper()
	d, err := h.Store.FindDeployment(h.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range d.Steps {
		if s.Name == name {
			out = append(out, s.State+" "+s.Detail)
		}
	}
	return out
}

func TestCanaryIdenticalReleasePassesEveryStep(t *testing.T) {
	h := NewHarness(t, Options{})
	app := canaryApp("{steps: [{weight: 10, duration: 2s}, {weight: 50, duration: 2s}]}")
	d, err := canaryDeploy(t, h, app, func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
		return sideFigures(900, 1, 3), sideFigures(100, 0, 3)
	})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if got, want := canaryCalls(h), "set-canary:10,set-canary:50,deploy"; got != want {
		t.Errorf("router calls: got %s, want %s", got, want)
	}
	steps := stepDetails(t, h, d.ID, "canary-step")
	if len(steps) != 2 {
		t.Fatalf("canary steps: %v", steps)
	}
	for _, s := range steps {
		if !strings.HasPrefix(s, "done pass: error rate (two-proportion z-test)") || !strings.Contains(s, "Mann-Whitney U") {
			t.Errorf("step: %q, want a pass with both tests' figures", s)
		}
	}
	if got := activeVersion(t, h); got != "1.1.0" {
		t.Errorf("serving %s, want 1.1.0", got)
	}
	h.MustConsistent(t, "shop", "prod")
	h.MustNoLock(t, "shop", "prod")
}

func TestCanaryFailedVerdictRollsBackAtOnce(t *testing.T) {
	for _, c := range []struct {
		name     string
		cand     gantry.SlotFigures
		test     string
		inReason string
	}{
		{"3% errors", sideFigures(300, 9, 3), "error rate", "two-proportion z-test"},
		{"30ms slower", sideFigures(300, 0, 33), "latency", "Mann-Whitney U"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := canaryApp("{steps: [{weight: 20, duration: 2s}, {weight: 50, duration: 2s}]}")
			app.Database = true
			v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
			v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01_init", "02_add"}})
			h.MustDeploy(t, "shop", "prod", v1)
			h.Mem.ResetCalls()
			h.Mem.SetCanaryFigures(func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
				return sideFigures(1200, 0, 3), c.cand
			})
			h.Clock.SetTick(time.Second)
			d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "dev"}, nil)
			var cf *deploy.CanaryFailure
			if !errors.As(err, &cf) || cf.Test != c.test || cf.Step != 1 || !strings.Contains(cf.Detail, c.inReason) {
				t.Fatalf("deploy: err %v, want a canary failure on %s at step 1", err, c.test)
			}
			if gantry.ErrorCode(err) != gantry.EFAILED {
				t.Errorf("code %s, want EFAILED", gantry.ErrorCode(err))
			}
			if got, want := canaryCalls(h), "set-canary:20,clear-canary"; got != want {
				t.Errorf("router calls: got %s, want %s", got, want)
			}
			if got := activeVersion(t, h); got != "1.0.0" {
				t.Errorf("serving %s, want 1.0.0", got)
			}
			journal := strings.Join(h.Steps(t, d.ID), ",")
			if !strings.Contains(journal, "db-expand,") || !strings.Contains(journal, "canary-step,canary-rollback,stop-candidate") || !strings.HasSuffix(journal, "db-rollback") {
				t.Errorf("journal: %s", journal)
			}
			failed := stepDetails(t, h, d.ID, "canary-step")
			if len(failed) != 1 || !strings.HasPrefix(failed[0], "failed canary step 1 failed on "+c.test) {
				t.Errorf("canary step: %v", failed)
			}
			// The schema is as the stable release needs it.
			if applied, active := h.DB.Applied(h.DBURL("shop", "prod")); strings.Join(applied, ",") != "01_init" || active != "" {
				t.Errorf("database: applied %v, active %q; want 01_init only", applied, active)
			}
			h.MustConsistent(t, "shop", "prod")
			h.MustNoLock(t, "shop", "prod")
		})
	}
}

func TestCanaryLowTrafficIsExtendedNeverFailed(t *testing.T) {
	for _, c := range []struct {
		onInconclusive string
		wantErr        bool
	}{{"fail", true}, {"pass", false}} {
		t.Run(c.onInconclusive, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := canaryApp("{steps: [{weight: 10, duration: 2s}], max_extensions: 2, on_inconclusive: " + c.onInconclusive + "}")
			// Few requests, the candidate's all failing: no verdict can be
			// drawn from so few, so none is.
			d, err := canaryDeploy(t, h, app, func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
				return sideFigures(20, 0, 3), sideFigures(3, 3, 50)
			})
			steps := stepDetails(t, h, d.ID, "canary-step")
			if len(steps) != 3 || !strings.HasPrefix(steps[0], "done extended: not enough traffic yet") || !strings.HasPrefix(steps[1], "done extended") {
				t.Fatalf("steps: %q, want two extensions then the outcome", steps)
			}
			var cf *deploy.CanaryFailure
			if c.wantErr != (err != nil) || err != nil && (!errors.As(err, &cf) || cf.Test != "traffic") {
				t.Fatalf("deploy: err %v, want failure %v on traffic", err, c.wantErr)
			}
			if c.wantErr == (activeVersion(t, h) == "1.1.0") {
				t.Errorf("serving %s", activeVersion(t, h))
			}
		})
	}
}

func TestCanaryPromoteAndAbortByCommand(t *testing.T) {
	for _, promote := range []bool{true, false} {
		name := map[bool]string{true: "promote", false: "abort"}[promote]
		t.Run(name, func(t *testing.T) {
			h := NewHarness(t, Options{})
			app := canaryApp("{steps: [{weight: 5, duration: 1h}, {weight: 50, duration: 1h}]}")
			v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
			v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
			h.MustDeploy(t, "shop", "prod", v1)
			if _, err := h.O.CanaryStatus(h.Ctx, "shop", "prod"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
				t.Errorf("status without a canary: %v, want ENOTFOUND", err)
			}
			type result struct {
				d   *gantry.Deployment
				err error
			}
			done := make(chan result, 1)
			go func() {
				d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "dev"}, nil)
				done <- result{d, err}
			}()
			var rep *gantry.CanaryReport
			deadline := time.Now().Add(10 * time.Second)
			for {
				var err error
				if rep, err = h.O.CanaryStatus(h.Ctx, "shop", "prod"); err == nil && rep.Step == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no canary running: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if rep.Stable != "blue:1.0.0" || rep.Candidate != "green:1.1.0" || rep.Weight != 5 || len(rep.Steps) != 2 {
				t.Errorf("status: %+v", rep)
			}
			if _, err := h.O.CanarySteer(h.Ctx, "shop", "prod", "ops", promote); err != nil {
				t.Fatal(err)
			}
			res := <-done
			if promote {
				if res.err != nil || activeVersion(t, h) != "1.1.0" {
					t.Fatalf("promote: err %v, serving %s", res.err, activeVersion(t, h))
				}
				if s := stepDetails(t, h, res.d.ID, "canary-step"); len(s) != 1 || !strings.Contains(s[0], "promoted by ops") {
					t.Errorf("steps: %v", s)
				}
			} else {
				var cf *deploy.CanaryFailure
				if !errors.As(res.err, &cf) || cf.Test != "abort" || !strings.Contains(cf.Detail, "aborted by ops") {
					t.Fatalf("abort: err %v", res.err)
				}
				if got := activeVersion(t, h); got != "1.0.0" {
					t.Errorf("serving %s after abort", got)
				}
			}
			h.MustConsistent(t, "shop", "prod")
			h.MustNoLock(t, "shop", "prod")
		})
	}
}

func TestCanaryRefusedWhereItCannotRun(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Strategy: gantry.StrategyCanary, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "no canary steps") {
		t.Errorf("err %v, want EINVALID naming the missing steps", err)
	}
	// A first deploy has nothing to compare with: it switches at once.
	capp := canaryApp("{steps: [{weight: 10, duration: 1h}]}")
	first := h.MustRelease(t, capp, Rel{Version: "2.0.0"})
	d := h.MustDeploy(t, "shop", "prod", first)
	if s := stepDetails(t, h, d.ID, "canary"); len(s) != 1 || !strings.Contains(s[0], "nothing to compare with") {
		t.Errorf("first deploy: %v", s)
	}
}

func activeVersion(t *testing.T, h *Harness) string {
	t.Helper()
	return h.MustEnv(t, "shop", "prod").ActiveSlot().Version
}

// A server that dies in the middle of a canary comes back with every
// request on the stable release and the candidate stopped.
func TestCanaryCrashRecoversToStable(t *testing.T) {
	h := NewHarness(t, Options{})
	app := canaryApp("{steps: [{weight: 30, duration: 1h}]}")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "prod", v1)
	h.CrashAt(t, "canary-step", gantry.StepStarted, func() {
		_, _ = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "dev"}, nil)
	})
	// The crash came before the split; a separate proxy may have it.
	_ = h.Mem.SetCanary(h.Ctx, "shop/prod", gantry.CanarySplit{Candidate: h.webTargets(t, "shop", h.MustEnv(t, "shop", "prod").Slots[gantry.SlotGreen]), Weight: 30})
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.Mem.Route("shop/prod"); st.Canary != nil {
		t.Errorf("split left after recovery: %+v", st.Canary)
	}
	if got := activeVersion(t, h); got != "1.0.0" {
		t.Errorf("serving %s, want 1.0.0", got)
	}
	h.MustConsistent(t, "shop", "prod")
}

// A canary runs inside the expand window: the schema is expanded before
// the first step, and nothing is contracted before the final switch.
func TestCanaryRunsInsideTheExpandWindow(t *testing.T) {
	h := NewHarness(t, Options{})
	app := canaryApp("{steps: [{weight: 10, duration: 2s}]}")
	app.Database = true
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Migrations: []string{"01_init"}})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Migrations: []string{"01_init", "02_add"}})
	h.MustDeploy(t, "shop", "prod", v1)
	h.Mem.SetCanaryFigures(func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
		return sideFigures(900, 0, 3), sideFigures(100, 0, 3)
	})
	h.Clock.SetTick(time.Second)
	var during []string
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == "canary-step" && s.State == gantry.StepStarted {
			applied, active := h.DB.Applied(h.DBURL("shop", "prod"))
			during = append(applied, "active="+active)
		}
	})
	d, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "prod", Release: v2.ID, Actor: "dev"}, nil)
	h.SetOnStep(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(during, ","); got != "01_init,02_add,active=02_add" {
		t.Errorf("during the canary: %s, want 02_add expanded and not completed", got)
	}
	journal := strings.Join(h.Steps(t, d.ID), ",")
	if i, j := strings.Index(journal, "db-expand"), strings.Index(journal, "canary-step"); i < 0 || j < i {
		t.Errorf("journal %s: want db-expand before the canary", journal)
	}
	// (A contract before the expand completes the previous release's.)
	_, afterExpand, _ := strings.Cut(journal, "db-expand")
	if c := strings.Index(afterExpand, "db-contract"); c >= 0 && c < strings.Index(afterExpand, "switch") {
		t.Errorf("journal %s: a contract between the expand and the switch", journal)
	}
}

// kubeCanaryApp is the slot runtime (the memdriver's fake of Kubernetes)
// with Gantry's router in front on test, on strategy canary.
func kubeCanaryApp(traffic string) App {
	app := k8s()
	app.Envs[0].Runtime = "kubernetes" + traffic
	app.Envs[0].Strategy = gantry.StrategyCanary
	app.Envs[0].Canary = "{steps: [{weight: 20, duration: 2s}, {weight: 50, duration: 2s}]}"
	return app
}

// On Kubernetes with runtime.traffic: router the canary runs through the
// same engine: the router splits the traffic between the pods of both
// slots, a failed verdict puts it back and scales the candidate down
// without the runtime's switch, a passed canary ends in the router's
// switch followed by the runtime's. With traffic: cluster it is refused,
// saying why.
func TestCanaryOnKubernetesBehindRouter(t *testing.T) {
	h := NewHarness(t, Options{})
	app := kubeCanaryApp(", traffic: router")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true})
	v3 := h.MustRelease(t, app, Rel{Version: "1.2.0", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	h.Mem.ResetCalls()
	h.Slots.ResetCalls()
	h.Clock.SetTick(time.Second)
	h.Mem.SetCanaryFigures(func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
		return sideFigures(1200, 0, 3), sideFigures(300, 9, 3)
	})
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	var cf *deploy.CanaryFailure
	if !errors.As(err, &cf) || cf.Test != "error rate" || cf.Step != 1 {
		t.Fatalf("deploy with 3%% errors: %v, want a canary failure on the error rate at step 1", err)
	}
	if got, want := canaryCalls(h), "set-canary:20,clear-canary"; got != want {
		t.Errorf("router calls of the failed canary: got %s, want %s", got, want)
	}
	if got, want := slotOps(h), "start-slot green,stop-slot green"; got != want {
		t.Errorf("slot calls of the failed canary: got %s, want %s (no runtime switch)", got, want)
	}
	if a, _ := h.Slots.ActiveSlot(h.Ctx, gantry.SlotRef{App: "shop", Env: "test"}); a != gantry.SlotBlue {
		t.Errorf("after the failed canary the runtime routes to %q, want blue", a)
	}

	h.Mem.ResetCalls()
	h.Slots.ResetCalls()
	h.Mem.SetCanaryFigures(func(gantry.CanarySplit) (gantry.SlotFigures, gantry.SlotFigures) {
		return sideFigures(1200, 0, 3), sideFigures(300, 0, 3)
	})
	d := h.MustDeploy(t, "shop", "test", v3)
	if got, want := canaryCalls(h), "set-canary:20,set-canary:50,deploy"; got != want {
		t.Errorf("router calls of the passed canary: got %s, want %s", got, want)
	}
	green := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]
	if sets := h.Mem.Calls("set-canary"); len(sets) == 0 || !sameAddrs(sets[0].Targets, green.Instances) {
		t.Errorf("the split's candidate: %+v, want green's pods %+v", sets, green.Instances)
	}
	if got, want := slotOps(h), "start-slot green,switch green"; got != want {
		t.Errorf("slot calls of the passed canary: got %s, want %s", got, want)
	}
	if v := stepDetails(t, h, d.ID, "canary-step"); len(v) != 2 || !strings.HasPrefix(v[0], "done pass") || !strings.HasPrefix(v[1], "done pass") {
		t.Errorf("canary steps: %v, want two passes", v)
	}
	if e := h.MustEnv(t, "shop", "test"); e.Active != gantry.SlotGreen || e.ActiveSlot().Version != "1.2.0" {
		t.Errorf("after the passed canary: active %s", e.Active)
	}

	cluster := kubeCanaryApp("")
	c1 := h.MustRelease(t, cluster, Rel{Version: "2.0.0", Images: true})
	_, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: c1.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "runtime.traffic: cluster") {
		t.Errorf("canary with traffic: cluster: %v, want EINVALID naming runtime.traffic", err)
	}
}

// A server that dies in the middle of a canary on Kubernetes behind the
// router comes back with the split cleared and the candidate scaled down.
func TestCanaryCrashOnKubernetesBehindRouter(t *testing.T) {
	h := NewHarness(t, Options{})
	app := kubeCanaryApp(", traffic: router")
	app.Envs[0].Canary = "{steps: [{weight: 30, duration: 1h}]}"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	h.CrashAt(t, "canary-step", gantry.StepStarted, func() {
		_, _ = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	})
	green := h.MustEnv(t, "shop", "test").Slots[gantry.SlotGreen]
	var cand []string
	for _, i := range green.Instances {
		cand = append(cand, i.Addr)
	}
	if err := h.Mem.SetCanary(h.Ctx, "shop/test", gantry.CanarySplit{Candidate: cand, Weight: 30, Step: 1, StableRelease: "blue:1.0.0", CandidateRelease: "green:1.1.0"}); err != nil {
		t.Fatal(err)
	}
	h.Slots.ResetCalls()
	if err := h.NewOrchestrator().Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.Mem.Route("shop/test"); st.Canary != nil {
		t.Errorf("split left after recovery: %+v", st.Canary)
	}
	if got, want := slotOps(h), "stop-slot green"; got != want {
		t.Errorf("slot calls of the recovery: got %s, want %s", got, want)
	}
	ds, err := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 1})
	if err != nil || len(ds) != 1 || ds[0].State != gantry.DeploymentRecovered || !strings.Contains(ds[0].Error, "its canary (step 1, 30% to green:1.1.0) was ended, every request back on blue:1.0.0") {
		t.Errorf("the recovered deployment: %+v, %v; want recovered, saying which canary was ended", ds, err)
	}
	if e := h.MustEnv(t, "shop", "test"); e.ActiveSlot().Version != "1.0.0" {
		t.Errorf("serving %s, want 1.0.0", e.ActiveSlot().Version)
	}
}
