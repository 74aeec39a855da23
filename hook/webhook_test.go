package hook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
)

func webhook(url, method string) gantry.Hook {
	return gantry.Hook{Webhook: &gantry.Webhook{URL: url, Method: method}}
}

// TestWebhookBody: a hook's webhook gets the context as JSON, with the
// headers receivers rely on.
func TestWebhookBody(t *testing.T) {
	rec := MustRecorder(t)
	r, _ := MustRunner(t)
	hc := sampleContext()
	hc.Vars = map[string]string{"LOG_LEVEL": "debug"}
	hc.Secrets = map[string]string{"TOKEN": "never-in-a-body"}
	hc.Dir = "/srv/release"
	if _, err := r.Before(context.Background(), []gantry.Hook{webhook(rec.URL()+"/purge", "POST")}, hc); err != nil {
		t.Fatalf("Before: %v", err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	req := reqs[0]
	for k, want := range map[string]string{
		"Content-Type":   "application/json",
		"User-Agent":     hook.UserAgent,
		"X-Gantry-Phase": "after_switch",
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if req.Method != "POST" || req.Path != "/purge" {
		t.Errorf("request = %s %s, want POST /purge", req.Method, req.Path)
	}
	golden(t, "webhook_body.json", append(req.Body, '\n'))
}

// TestWebhookRetried: 5xx, 429 and network errors are tried again, with the
// same idempotency key, until a 2xx.
func TestWebhookRetried(t *testing.T) {
	rec := MustRecorder(t, 500, 429)
	r, _ := MustRunner(t)
	results := r.After(context.Background(), []gantry.Hook{webhook(rec.URL(), "PUT")}, sampleContext())
	got := results[0]
	if !got.OK || got.Attempts != 3 || got.Status != 200 || got.Kind != hook.KindWebhook {
		t.Errorf("result = %+v, want ok after 3 attempts, status 200", got)
	}
	reqs := rec.requests()
	if len(reqs) != 3 {
		t.Fatalf("requests = %d, want 3", len(reqs))
	}
	key := reqs[0].Header.Get("Idempotency-Key")
	for i, req := range reqs {
		if req.Method != "PUT" {
			t.Errorf("request %d method = %s, want PUT", i, req.Method)
		}
		if got := req.Header.Get("Idempotency-Key"); key == "" || got != key {
			t.Errorf("request %d Idempotency-Key = %q, want %q on every attempt", i, got, key)
		}
	}
}

// TestWebhookClientErrorNotRetried: a 4xx other than 429 is final.
func TestWebhookClientErrorNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 404, 422} {
		rec := MustRecorder(t, status)
		r, _ := MustRunner(t)
		results := r.After(context.Background(), []gantry.Hook{webhook(rec.URL(), "POST")}, sampleContext())
		got := results[0]
		if got.OK || got.Attempts != 1 || got.Status != status || !strings.HasPrefix(got.Error, "HTTP ") {
			t.Errorf("status %d: result = %+v, want one failed attempt", status, got)
		}
		if n := len(rec.requests()); n != 1 {
			t.Errorf("status %d: requests = %d, want 1", status, n)
		}
	}
}

// TestWebhookBeforeFailureStops: a failing pre-hook webhook stops the phase.
func TestWebhookBeforeFailureStops(t *testing.T) {
	rec := MustRecorder(t, 403)
	r, _ := MustRunner(t)
	hc := sampleContext()
	hc.Phase = "before_switch"
	hc.Dir = t.TempDir()
	results, err := r.Before(context.Background(), []gantry.Hook{webhook(rec.URL(), "POST"), {Command: "touch ran"}}, hc)
	if gantry.ErrorCode(err) != gantry.EFAILED || len(results) != 1 {
		t.Fatalf("Before = %d results, %v; want 1 and EFAILED", len(results), err)
	}
	if got := results[0]; got.Status != 403 || got.Output != "Forbidden" {
		t.Errorf("result = status %d, output %q; want 403 and the response body", got.Status, got.Output)
	}
}

// TestWebhookTimeout: an attempt that outlives WebhookTimeout fails as a
// timeout and is tried again.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	r, _ := MustRunner(t)
	r.Attempts = 2
	r.WebhookTimeout = 500 * time.Millisecond
	start := time.Now()
	results := r.After(context.Background(), []gantry.Hook{webhook(srv.URL, "POST")}, sampleContext())
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("After took %s, want it bounded by two timeouts", elapsed)
	}
	got := results[0]
	if got.OK || got.Attempts != 2 || got.Error != "timed out after 500ms" {
		t.Errorf("result = %+v, want 2 attempts that timed out", got)
	}
	// Under heavy load an attempt may time out before its request is read.
	if n := hits.Load(); n < 1 || n > 2 {
		t.Errorf("server saw %d requests, want 1 or 2", n)
	}
}

// TestWebhookNetworkError: a refused connection is retried, and reported
// without the URL.
func TestWebhookNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/T000/B000/secretpath"
	srv.Close()
	r, logs := MustRunner(t)
	r.Attempts = 3
	got := r.After(context.Background(), []gantry.Hook{webhook(url, "POST")}, sampleContext())[0]
	if got.OK || got.Attempts != 3 || !strings.Contains(got.Error, "connection refused") {
		t.Errorf("result = %+v, want 3 refused attempts", got)
	}
	if strings.Contains(got.Error+got.Target+logs.String(), "secretpath") {
		t.Errorf("the URL's path leaked: error %q, target %q, logs:\n%s", got.Error, got.Target, logs)
	}
}

// TestWebhookResponseBounded keeps the head of a large response only.
func TestWebhookResponseBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(strings.Repeat("x", 4<<20)))
	}))
	defer srv.Close()
	r, _ := MustRunner(t)
	r.Attempts, r.OutputLimit = 1, 512
	got := r.After(context.Background(), []gantry.Hook{webhook(srv.URL, "POST")}, sampleContext())[0]
	if len(got.Output) != 512 || got.Status != 502 {
		t.Errorf("result = status %d, %d bytes of output; want 502 and 512", got.Status, len(got.Output))
	}
}

// TestWebhookPlaceholders: ${NAME} in a URL comes from the environment's
// secrets and vars at send time, and never shows in results or logs.
func TestWebhookPlaceholders(t *testing.T) {
	rec := MustRecorder(t)
	r, logs := MustRunner(t)
	hc := sampleContext()
	hc.Vars = map[string]string{"ZONE": "z-42"}
	hc.Secrets = map[string]string{"PURGE_TOKEN": "tok-abcdef"}
	got := r.After(context.Background(), []gantry.Hook{webhook(rec.URL()+"/zones/${ZONE}/purge?token=${PURGE_TOKEN}", "POST")}, hc)[0]
	if !got.OK {
		t.Fatalf("result = %+v, want ok", got)
	}
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0].Path != "/zones/z-42/purge" {
		t.Fatalf("requests = %+v, want one to /zones/z-42/purge", reqs)
	}
	if want := rec.URL() + "/…"; got.Target != want {
		t.Errorf("target = %q, want %q", got.Target, want)
	}
	if strings.Contains(logs.String(), "tok-abcdef") || strings.Contains(string(mustJSON(t, got)), "tok-abcdef") {
		t.Errorf("the token leaked into the logs or the result")
	}

	// A name the environment does not define fails before any request.
	missing := r.After(context.Background(), []gantry.Hook{webhook(rec.URL()+"/${NOPE}", "POST")}, hc)[0]
	if missing.OK || missing.Attempts != 1 || !strings.Contains(missing.Error, "${NOPE}") {
		t.Errorf("result = %+v, want one failed attempt naming ${NOPE}", missing)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("requests = %d, want still 1", n)
	}
}

// TestWebhookGetHasNoBody: GET carries no body.
func TestWebhookGetHasNoBody(t *testing.T) {
	rec := MustRecorder(t)
	r, _ := MustRunner(t)
	r.After(context.Background(), []gantry.Hook{webhook(rec.URL(), "GET")}, sampleContext())
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0].Method != "GET" || len(reqs[0].Body) != 0 {
		t.Errorf("requests = %+v, want one GET without a body", reqs)
	}
}

// TestWebhookRetryGivesUpOnCancel stops waiting between attempts when the
// caller cancels.
func TestWebhookRetryGivesUpOnCancel(t *testing.T) {
	rec := MustRecorder(t, 503, 503, 503)
	r, _ := MustRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	r.Backoff = func(int) time.Duration { cancel(); return time.Hour }
	got := r.After(ctx, []gantry.Hook{webhook(rec.URL(), "POST")}, sampleContext())[0]
	if got.OK || got.Attempts != 1 || !strings.Contains(got.Error, "gave up: context canceled") {
		t.Errorf("result = %+v, want one attempt and a note that it gave up", got)
	}
}

func TestDefaultBackoff(t *testing.T) {
	r := &hook.Runner{Attempts: 9}
	var waits []time.Duration
	for n := 1; n <= 8; n++ {
		waits = append(waits, hook.BackoffFor(r, n))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("backoff after attempt %d = %s, want %s", i+1, waits[i], want[i])
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/…"},
		{"https://user:pass@cdn.example/purge?token=x", "https://cdn.example/…"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"https://cdn.example?key=x", "https://cdn.example"},
		{"${SLACK_WEBHOOK_URL}", "${SLACK_WEBHOOK_URL}"},
		{"not a url", "(URL hidden)"},
	} {
		if got := hook.RedactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
