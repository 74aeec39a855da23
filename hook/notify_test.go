package hook_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
)

func sampleEvent(state string) hook.Event {
	hc := sampleContext()
	hc.Phase = ""
	return hook.Event{Context: hc, Kind: gantry.KindPromote, State: state}
}

// TestNotifySlackPayload: a Slack-compatible target gets {"text": …} and
// nothing else, with Slack's markup characters escaped.
func TestNotifySlackPayload(t *testing.T) {
	rec := MustRecorder(t)
	r, _ := MustRunner(t)
	ev := sampleEvent(gantry.DeploymentFailed)
	ev.Error = "health check of web: GET /up answered 502 <Bad Gateway> & gave up"
	results := r.Notify(context.Background(), []gantry.NotifyTarget{{Slack: rec.URL() + "/services/T0/B0/x"}}, ev)
	if len(results) != 1 || !results[0].OK || results[0].Kind != hook.KindSlack {
		t.Fatalf("results = %+v, want one successful slack result", results)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	if got := reqs[0].Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatalf("body %s: %v", reqs[0].Body, err)
	}
	if len(body) != 1 {
		t.Errorf("body keys = %v, want text only", body)
	}
	want := "shop: promote of 16.03.1b to prod by alice failed: health check of web: GET /up answered 502 &lt;Bad Gateway&gt; &amp; gave up (deployment 42) http://shop.localhost:8080"
	if got := body["text"]; got != want {
		t.Errorf("text = %q\nwant   %q", got, want)
	}
}

// TestNotifyGenericWebhook: a generic target gets the event as JSON, without
// the environment's vars, secrets or directory.
func TestNotifyGenericWebhook(t *testing.T) {
	rec := MustRecorder(t)
	r, _ := MustRunner(t)
	ev := sampleEvent(gantry.DeploymentSucceeded)
	ev.Vars = map[string]string{"LOG_LEVEL": "debug"}
	ev.Secrets = map[string]string{"HOOK_TOKEN": "tok-zyxwvu"}
	ev.Dir = "/srv/release"
	results := r.Notify(context.Background(), []gantry.NotifyTarget{{Webhook: rec.URL() + "/events?token=${HOOK_TOKEN}"}}, ev)
	if len(results) != 1 || !results[0].OK {
		t.Fatalf("results = %+v, want one success", results)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	golden(t, "notify_webhook.json", append(reqs[0].Body, '\n'))
	if strings.Contains(string(reqs[0].Body), "tok-zyxwvu") || strings.Contains(string(reqs[0].Body), "LOG_LEVEL") {
		t.Errorf("the body carries the environment's vars or secrets: %s", reqs[0].Body)
	}
}

// TestNotifyQuietWhileWaitingForApproval sends nothing for a deployment
// that waits for approval, and sends the next event as usual.
func TestNotifyQuietWhileWaitingForApproval(t *testing.T) {
	rec := MustRecorder(t)
	r, _ := MustRunner(t)
	targets := []gantry.NotifyTarget{{Slack: rec.URL()}, {Webhook: rec.URL()}}
	if results := r.Notify(context.Background(), targets, sampleEvent(hook.StateWaitingApproval)); results != nil {
		t.Errorf("results = %+v, want nil while waiting for approval", results)
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("requests while waiting for approval = %d, want 0", n)
	}
	results := r.Notify(context.Background(), targets, sampleEvent(gantry.DeploymentSucceeded))
	if len(results) != 2 || len(hook.Failed(results)) != 0 {
		t.Errorf("results = %+v, want two successes", results)
	}
	if n := len(rec.requests()); n != 2 {
		t.Errorf("requests after approval = %d, want 2", n)
	}
}

// TestNotifyRetriesEachTarget: targets are independent; each is retried and
// reported in the targets' order.
func TestNotifyRetriesEachTarget(t *testing.T) {
	flaky := MustRecorder(t, 502, 503)
	broken := MustRecorder(t, 410)
	r, logs := MustRunner(t)
	targets := []gantry.NotifyTarget{{Slack: broken.URL() + "/services/T0/B0/slacksecret"}, {Webhook: flaky.URL()}, {}}
	results := r.Notify(context.Background(), targets, sampleEvent(gantry.DeploymentSucceeded))
	if len(results) != 3 {
		t.Fatalf("results = %d, want 3", len(results))
	}
	if got := results[0]; got.OK || got.Attempts != 1 || got.Status != 410 || got.Index != 0 {
		t.Errorf("broken target = %+v, want one failed attempt with 410", got)
	}
	if got := results[1]; !got.OK || got.Attempts != 3 || got.Index != 1 {
		t.Errorf("flaky target = %+v, want ok after 3 attempts", got)
	}
	if got := results[2]; got.OK || got.Error == "" {
		t.Errorf("empty target = %+v, want a failure that says so", got)
	}
	if strings.Contains(logs.String(), "slacksecret") {
		t.Errorf("the Slack URL reached the log:\n%s", logs)
	}
}

func TestEventText(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   hook.Event
		want string
	}{
		{"started", hook.Event{Context: hook.Context{App: "shop", Env: "test", Version: "1.2.0", Actor: "ci"}, Kind: "deploy", State: "running"},
			"shop: deploy of 1.2.0 to test by ci started"},
		{"rollback", hook.Event{Context: hook.Context{App: "shop", Env: "prod", Release: "rel-1", DeploymentID: 9}, Kind: "rollback", State: "succeeded"},
			"shop: rollback of rel-1 to prod succeeded (deployment 9)"},
		{"defaults", hook.Event{Context: hook.Context{App: "shop", Env: "prod"}},
			"shop: deploy to prod changed"},
	} {
		if got := tc.ev.Text(); got != tc.want {
			t.Errorf("%s: Text() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEventFor(t *testing.T) {
	d := &gantry.Deployment{ID: 7, App: "shop", Env: "prod", Kind: gantry.KindDeploy, ReleaseID: "rel-2",
		Actor: "bob", State: gantry.DeploymentFailed, Error: "verify failed"}
	rel := &gantry.Release{ID: "rel-2", Version: "2.0.0", Commit: "abc123"}
	got := hook.EventFor(d, rel)
	want := hook.Event{Context: hook.Context{App: "shop", Env: "prod", Release: "rel-2", Version: "2.0.0",
		Commit: "abc123", Actor: "bob", DeploymentID: 7}, Kind: "deploy", State: "failed", Error: "verify failed"}
	if !slices.Equal(mustJSON(t, got), mustJSON(t, want)) {
		t.Errorf("EventFor = %s\nwant       %s", mustJSON(t, got), mustJSON(t, want))
	}
}

// TestNotifyEnvironments: a target limited to some environments hears only
// their events.
func TestNotifyEnvironments(t *testing.T) {
	prodOnly := MustRecorder(t)
	everyone := MustRecorder(t)
	r, _ := MustRunner(t)
	targets := []gantry.NotifyTarget{{Slack: prodOnly.URL(), Environments: []string{"prod"}}, {Webhook: everyone.URL()}}
	ev := sampleEvent(gantry.DeploymentSucceeded)
	ev.Env = "test"
	results := r.Notify(context.Background(), targets, ev)
	if len(results) != 1 || results[0].Index != 1 || !results[0].OK {
		t.Errorf("results for test = %+v, want the second target only", results)
	}
	ev.Env = "prod"
	if results := r.Notify(context.Background(), targets, ev); len(results) != 2 {
		t.Errorf("results for prod = %+v, want both targets", results)
	}
	if got, want := len(prodOnly.requests()), 1; got != want {
		t.Errorf("prod-only target got %d requests, want %d", got, want)
	}
	if got, want := len(everyone.requests()), 2; got != want {
		t.Errorf("unlimited target got %d requests, want %d", got, want)
	}
}
