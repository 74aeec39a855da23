package deploy_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// hooks records the phases run and the notifications sent; a phase named in
// fail fails.
type hooks struct {
	mu     sync.Mutex
	phases []string
	urls   []string
	sent   chan string
	fail   string
	// values are the vars and secrets the last notification was given.
	vars, secrets map[string]string
}

func (k *hooks) RunPhase(ctx context.Context, hs map[string][]gantry.Hook, hc gantry.HookContext) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.phases = append(k.phases, hc.Phase)
	k.urls = append(k.urls, hc.URL)
	if hc.Phase == k.fail {
		if strings.HasPrefix(hc.Phase, "after_") {
			return "webhook answered 500", true, nil
		}
		return "", false, gantry.Errorf(gantry.EFAILED, "hook %s failed", hc.Phase)
	}
	return "ran " + hc.Phase, false, nil
}

func (k *hooks) Notify(ctx context.Context, ts []gantry.NotifyTarget, d *gantry.Deployment, rel *gantry.Release, vars, secrets map[string]string) {
	k.mu.Lock()
	k.vars, k.secrets = vars, secrets
	k.mu.Unlock()
	k.sent <- d.State
}

// TestNotificationsGetTheEnvironmentsSecrets: a notify target written as
// docs/hooks.md says (slack: ${SLACK_WEBHOOK_URL}, the URL a secret of the
// environment) is given the environment's secrets and vars to fill it.
// Before, notifications got neither, and every such target failed with
// "neither a variable nor a secret of environment".
func TestNotificationsGetTheEnvironmentsSecrets(t *testing.T) {
	h := NewHarness(t, Options{})
	k := &hooks{sent: make(chan string, 10)}
	h.O.Hooks = k
	h.O.SecretFor = func(app, env, name string) (string, bool) {
		return "https://hooks.slack.example/" + app + "/" + env, name == "SLACK_WEBHOOK_URL"
	}
	app := Simple("shop")
	app.Extra = "notify:\n  - slack: ${SLACK_WEBHOOK_URL}\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	h.MustDeploy(t, "shop", "test", v1)
	for range 2 {
		<-k.sent
	}
	// The release that adds the secret (and a variable) gives them to its
	// own notifications, not only to the next release's.
	app.Envs[0].Secrets = []string{"SLACK_WEBHOOK_URL"}
	app.Envs[0].Vars = "{CHANNEL: deploys}"
	v2 := h.MustRelease(t, app, Rel{Version: "1.1.0"})
	h.MustDeploy(t, "shop", "test", v2)
	for range 2 {
		select {
		case <-k.sent:
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if got, want := k.secrets["SLACK_WEBHOOK_URL"], "https://hooks.slack.example/shop/test"; got != want {
		t.Errorf("notification's SLACK_WEBHOOK_URL = %q, want %q", got, want)
	}
	if got := k.vars["CHANNEL"]; got != "deploys" {
		t.Errorf("notification's CHANNEL = %q, want deploys", got)
	}
}

const hookYAML = `hooks:
  before_deploy: [{command: "true"}]
  before_switch: [{command: "true"}]
  after_switch: [{command: "true"}]
  after_deploy: [{command: "true"}]
notify:
  - webhook: https://chat.example/hook
verify:
  - command: test -n "$GANTRY_URL"
`

func TestHooksAndNotifications(t *testing.T) {
	h := NewHarness(t, Options{})
	k := &hooks{sent: make(chan string, 10)}
	h.O.Hooks = k
	h.O.RouterURL = "http://127.0.0.1:8080"
	app := Simple("shop")
	app.Extra = hookYAML
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	d := h.MustDeploy(t, "shop", "test", v1)
	if got, want := strings.Join(k.phases, ","), "before_deploy,before_switch,after_switch,after_deploy"; got != want {
		t.Errorf("hook phases: got %s, want %s", got, want)
	}
	if k.urls[len(k.urls)-1] != "http://test.shop.localhost:8080" {
		t.Errorf("after_deploy hook URL: %q", k.urls[len(k.urls)-1])
	}
	for _, want := range []string{gantry.DeploymentRunning, gantry.DeploymentSucceeded} {
		select {
		case got := <-k.sent:
			if got != want {
				t.Errorf("notification: %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s notification", want)
		}
	}
	if !strings.Contains(strings.Join(h.Steps(t, d.ID), ","), "hooks before_deploy") {
		t.Errorf("journal %v lacks the hooks", h.Steps(t, d.ID))
	}
	// A failing after_* hook is a failed step; the deployment stands.
	k.fail = "after_switch"
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	d2 := h.MustDeploy(t, "shop", "test", v2)
	rec, _ := h.Store.FindDeployment(h.Ctx, d2.ID)
	failedStep := false
	for _, s := range rec.Steps {
		failedStep = failedStep || (s.Name == "hooks after_switch" && s.State == gantry.StepFailed)
	}
	if !failedStep || h.ActiveRelease(t, "shop", "test") != v2.ID {
		t.Errorf("a failing after_switch hook: failed step %t, active %s; want a failed step and v2 active", failedStep, h.ActiveRelease(t, "shop", "test"))
	}
	// A failing before_* hook stops the deployment before anything starts.
	k.fail = "before_deploy"
	v3 := h.MustRelease(t, app, Rel{Version: "1.0.2"})
	h.Driver.ResetCalls()
	if _, err := h.O.Deploy(h.Ctx, dreq("test", v3), nil); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Errorf("failing before_deploy: got %v, want EFAILED", err)
	}
	if n := len(h.Driver.Calls("start")); n != 0 {
		t.Errorf("a failed before_deploy hook started %d instances", n)
	}
}

func TestVerifyFailureStopsTheCandidate(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	app.Extra = "verify:\n  - command: exit 3\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	_, err := h.O.Deploy(h.Ctx, dreq("test", v1), nil)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "verify check 1") {
		t.Fatalf("deploy with a failing verify command: got %v, want EFAILED naming the check", err)
	}
	if n := len(h.Driver.Running()); n != 0 {
		t.Errorf("%d instances run after a failed verify", n)
	}
	h.MustNoLock(t, "shop", "test")
}

func TestLogsStopAllAndTheReaperLoop(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	h.MustDeploy(t, "shop", "test", v2)
	var buf bytes.Buffer
	if err := h.O.Logs(h.Ctx, "shop", "test", "", 10, false, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "==> web-1 (1.0.1) <==") || !strings.Contains(buf.String(), "listening on") {
		t.Errorf("logs: %q", buf.String())
	}
	if err := h.O.Logs(h.Ctx, "shop", "test", "nope", 10, false, &buf); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("logs of an unknown service: got %v, want ENOTFOUND", err)
	}
	// The reaper loop stops the standby once keep-warm is over.
	h.Clock.Advance(gantry.DefaultKeepWarm + time.Second)
	ctx, cancel := context.WithCancel(h.Ctx)
	go h.O.Watch(ctx, time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for len(h.MustEnv(t, "shop", "test").Slots[gantry.SlotBlue].Instances) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reaper loop did not stop the standby")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wctx, wcancel := context.WithTimeout(h.Ctx, 5*time.Second)
	h.O.Wait(wctx)
	wcancel()
	if err := h.O.StopAll(h.Ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Driver.Running()); n != 0 {
		t.Errorf("StopAll left %d instances", n)
	}
}

func TestRecoverKeepsAPausedDeployment(t *testing.T) {
	h := NewHarness(t, Options{})
	app := ordered("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	h.MustDeploy(t, "shop", "test", v1)
	two := 2
	d, err := h.O.DeployOrdered(h.Ctx, dreq("test", v2), &two, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h.O = h.NewOrchestrator()
	if err := h.O.Recover(h.Ctx); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.Store.FindDeployment(h.Ctx, d.ID)
	if rec.State != gantry.DeploymentPaused {
		t.Errorf("after recovery the paused deployment is %s", rec.State)
	}
	if st, _ := h.Mem.Route("shop/test"); len(st.Preview) != 1 {
		t.Errorf("after recovery the preview is %v, want the paused candidate's api", st.Preview)
	}
	if _, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: "shop", Env: "test", Actor: "dev", Abort: false}, nil); err != nil {
		t.Fatalf("continue after a restart: %v", err)
	}
	h.MustConsistent(t, "shop", "test")
	h.MustNoLock(t, "shop", "test")
}

// TestSlotDriverRunsSwitchHooks: on a runtime that switches whole slots
// (Kubernetes) the switch hooks run around the runtime's switch as around
// the router's: before_switch against the preview host, after_switch
// against the environment's host; a failing before_switch hook stops the
// deploy before the switch and scales the candidate down. Before, the slot
// runtime skipped both phases: an after_switch cache purge never ran.
func TestSlotDriverRunsSwitchHooks(t *testing.T) {
	h := NewHarness(t, Options{})
	k := &hooks{sent: make(chan string, 10)}
	h.O.Hooks = k
	h.O.RouterURL = "http://127.0.0.1:8080"
	app := k8s()
	app.Extra = "hooks:\n  before_switch: [{command: \"true\"}]\n  after_switch: [{command: \"true\"}]\n"
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0", Images: true})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1", Images: true})
	h.MustDeploy(t, "shop", "test", v1)
	k.mu.Lock()
	phases, urls := strings.Join(k.phases, ","), strings.Join(k.urls, ",")
	k.mu.Unlock()
	if want := "before_switch,after_switch"; phases != want {
		t.Errorf("hook phases on the slot runtime: got %s, want %s", phases, want)
	}
	if want := "http://preview.test.shop.localhost:8080,http://test.shop.localhost:8080"; urls != want {
		t.Errorf("hook URLs: got %s, want %s", urls, want)
	}

	k.fail = "before_switch"
	h.Slots.ResetCalls()
	if _, err := h.O.Deploy(h.Ctx, dreq("test", v2), nil); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Fatalf("failing before_switch on the slot runtime: got %v, want EFAILED", err)
	}
	if got, want := slotOps(h), "start-slot green,stop-slot green"; got != want {
		t.Errorf("slot calls after a failing before_switch: got %s, want %s", got, want)
	}
	if got := h.ActiveRelease(t, "shop", "test"); got != v1.ID {
		t.Errorf("active release after a failing before_switch: %s, want %s", got, v1.ID)
	}
}
