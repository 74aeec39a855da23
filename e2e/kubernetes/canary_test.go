package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/k8stest"
)

// TestCanaryOnKubernetesBehindRouter: with runtime.traffic: router, a
// canary splits the traffic between the pods of both slots in Gantry's
// router, under load. A release whose pages fail is stopped at its first
// judged step, the Services never left the live slot; a good release is
// reached by testers at 0%, passes every step and is switched (router,
// then Services), while a client given the old release keeps it across
// the switch. No request fails but those the bad release answers 500.
func TestCanaryOnKubernetesBehindRouter(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "canary")
	serveApp(t, c, ns, breaks("1.1.0", "/"))
	const host = "test.shop.localhost"
	env := "    strategy: canary\n    canary: {steps: [{weight: 0, duration: 2s}, {weight: 30, duration: 3s}, {weight: 60, duration: 2s}], " +
		"match: {header: X-Canary, value: \"1\"}, min_requests: 20, sticky: 5m}\n"
	g := newServer(t, c, serveManifest(ns, ", traffic: router", env), serveReleases())
	g.cli(0, "deploy", "test", "--release", "1.0.0")
	l := startLoad(t, g.router, host)

	out := g.cli(1, "deploy", "test", "--release", "1.1.0")
	if !strings.Contains(out, "canary step 2 failed on error rate") || !strings.Contains(out, "two-proportion z-test") {
		t.Errorf("the deploy of the failing 1.1.0 does not stop at its first judged step naming the test:\n%s", out)
	}
	if s := liveSlot(t, c, ns); s != "blue" {
		t.Errorf("after the failed canary the live Service selects %q, want blue", s)
	}
	got := l.take()
	for k, n := range got {
		if k != "200 version=1.0.0" && k != "500 broken" {
			t.Errorf("%d requests answered %q during the failed canary (all %v)", n, k, got)
		}
	}
	if got["500 broken"] == 0 {
		t.Errorf("no request reached 1.1.0 during its canary: %v", got)
	}
	t.Logf("answers during the failed canary of 1.1.0: %v", got)
	time.Sleep(500 * time.Millisecond)
	if got := l.take(); got["200 version=1.0.0"] == 0 || len(got) != 1 {
		t.Errorf("through the router after the failed canary: %v, want only 1.0.0's answers", got)
	}

	done := make(chan string, 1)
	go func() {
		cmd := exec.Command(g.bin, "deploy", "test", "--release", "1.2.0")
		cmd.Env = append(os.Environ(), "GANTRY_SERVER=unix://"+filepath.Join(g.data, "gantry.sock"))
		b, err := cmd.CombinedOutput()
		done <- fmt.Sprintf("%v\n%s", err, b)
	}()
	waitStep := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			cmd := exec.Command(g.bin, "canary", "status", "test", "--json")
			cmd.Env = append(os.Environ(), "GANTRY_SERVER=unix://"+filepath.Join(g.data, "gantry.sock"))
			var rep gantry.CanaryReport
			if b, err := cmd.Output(); err == nil && json.Unmarshal(b, &rep) == nil && rep.Step >= n {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the canary never reached step %d", n)
	}
	ask := func(jar http.CookieJar, header string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.router+"/", nil)
		req.Host = host
		if header != "" {
			req.Header.Set("X-Canary", header)
		}
		resp, err := (&http.Client{Jar: jar, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.Fields(string(b) + " ?")[0])
	}
	waitStep(1)
	for i := 0; i < 10; i++ {
		if v := ask(nil, "1"); v != "200 version=1.2.0" {
			t.Fatalf("a tester at 0%%: %q, want 1.2.0", v)
		}
	}
	jar, _ := cookiejar.New(nil)
	var sticky []string
	after := 0
	for after < 20 {
		sticky = append(sticky, ask(jar, ""))
		select {
		case res := <-done:
			if !strings.HasPrefix(res, "<nil>") {
				t.Fatalf("the deploy of 1.2.0 failed: %s", res)
			}
			if !strings.Contains(res, "pass") {
				t.Errorf("the deploy of 1.2.0 does not show its verdicts:\n%s", res)
			}
			done = nil
		default:
		}
		if done == nil {
			after++
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, v := range sticky {
		if v != "200 version=1.0.0" {
			t.Fatalf("the sticky client's request %d of %d: %q, want 1.0.0 throughout", i, len(sticky), v)
		}
	}
	if s := liveSlot(t, c, ns); s != "green" {
		t.Errorf("after the canary of 1.2.0 the live Service selects %q, want green", s)
	}
	got = l.take()
	for k, n := range got {
		if k != "200 version=1.0.0" && k != "200 version=1.2.0" {
			t.Errorf("%d requests answered %q during the canary of 1.2.0 (all %v)", n, k, got)
		}
	}
	t.Logf("answers during the canary of 1.2.0: %v; the sticky client made %d requests, %d after the switch", got, len(sticky), after)
	time.Sleep(300 * time.Millisecond)
	if got := l.take(); got["200 version=1.2.0"] == 0 || len(got) != 1 {
		t.Errorf("new clients after the switch: %v, want only 1.2.0's answers", got)
	}
}
