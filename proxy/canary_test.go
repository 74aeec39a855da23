package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func canarySplitFor(cand string, weight, step int) gantry.CanarySplit {
	return gantry.CanarySplit{Candidate: []string{cand}, Weight: weight, Step: step,
		StableRelease: "blue:1.0.0", CandidateRelease: "green:1.1.0", Sticky: time.Minute,
		Match: &gantry.CanaryMatch{Header: "X-Canary", Value: "yes"}}
}

// getAs sends GET / with extra headers and returns the body and the
// release cookie the router set ("" when none).
func getAs(tb testing.TB, c *http.Client, front *httptest.Server, host string, hdr map[string]string) (string, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET: status %d %q", resp.StatusCode, b)
	}
	cookie := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == ReleaseCookie {
			cookie = ck.Value
		}
	}
	return string(b), cookie
}

func TestCanaryWeightSplitsAndCounts(t *testing.T) {
	r, front := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	rc := fastRoute("app/prod", "app.test")
	MustDeploy(t, r, rc, blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 25, 1)); err != nil {
		t.Fatal(err)
	}
	c := testClient() // no jar: every request is a new client
	got := map[string]int{}
	cookies := map[string]string{}
	const n = 800
	for i := 0; i < n; i++ {
		body, cookie := getAs(t, c, front, "app.test", nil)
		got[body]++
		cookies[body] = cookie
	}
	// 25% of 800 is 200; the binomial sd is about 12, so 140..260 is
	// five sd either side.
	if got["green"] < 140 || got["green"] > 260 {
		t.Errorf("candidate got %d of %d requests at weight 25, want about 200", got["green"], n)
	}
	if cookies["green"] != "green:1.1.0" || cookies["blue"] != "blue:1.0.0" {
		t.Errorf("cookies: got %v", cookies)
	}
	st, err := r.CanaryStatus(context.Background(), "app/prod")
	if err != nil {
		t.Fatal(err)
	}
	if st.Stable.Requests+st.Candidate.Requests != n || st.Candidate.Requests != int64(got["green"]) {
		t.Errorf("figures: stable %d candidate %d, want %d and %d", st.Stable.Requests, st.Candidate.Requests, got["blue"], got["green"])
	}
	if len(st.Candidate.LatencyMicros) != got["green"] || st.Candidate.P99 <= 0 {
		t.Errorf("candidate sample: %d values, p99 %s", len(st.Candidate.LatencyMicros), st.Candidate.P99)
	}
	// A new step starts its figures over.
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 50, 2)); err != nil {
		t.Fatal(err)
	}
	st, _ = r.CanaryStatus(context.Background(), "app/prod")
	if st.Stable.Requests != 0 || st.Candidate.Requests != 0 || st.Split.Weight != 50 {
		t.Errorf("step 2: got %+v, want empty figures at weight 50", st)
	}
}

func TestCanaryTargetedRuleAtZeroWeight(t *testing.T) {
	r, front := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	MustDeploy(t, r, fastRoute("app/prod", "app.test"), blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 0, 1)); err != nil {
		t.Fatal(err)
	}
	c := testClient()
	for i := 0; i < 50; i++ {
		if body, _ := getAs(t, c, front, "app.test", nil); body != "blue" {
			t.Fatalf("request %d without the header at 0%%: got %q, want blue", i, body)
		}
		if body, cookie := getAs(t, c, front, "app.test", map[string]string{"X-Canary": "yes"}); body != "green" || cookie != "" {
			t.Fatalf("request %d with the header: got %q cookie %q, want green and no cookie", i, body, cookie)
		}
		if body, _ := getAs(t, c, front, "app.test", map[string]string{"X-Canary": "no"}); body != "blue" {
			t.Fatalf("request %d with another header value: got %q, want blue", i, body)
		}
	}
	st, _ := r.CanaryStatus(context.Background(), "app/prod")
	if st.Candidate.Targeted != 50 || st.Candidate.Requests != 0 || st.Stable.Requests != 100 {
		t.Errorf("figures: targeted %d candidate %d stable %d, want 50, 0, 100", st.Candidate.Targeted, st.Candidate.Requests, st.Stable.Requests)
	}
}

// A client keeps the release it was first given through the steps and,
// until its cookie's bound, across the final switch; then it moves on.
func TestCanaryStickyAcrossSwitch(t *testing.T) {
	r, front := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	rc := fastRoute("app/prod", "app.test")
	MustDeploy(t, r, rc, blue.addr())
	split := canarySplitFor(green.addr(), 50, 1)
	split.Sticky = 2 * time.Second
	if err := r.SetCanary(context.Background(), "app/prod", split); err != nil {
		t.Fatal(err)
	}
	// Find one client of each release.
	clients := map[string]*http.Client{}
	for len(clients) < 2 {
		jar, _ := cookiejar.New(nil)
		c := testClient()
		c.Jar = jar
		body, _ := getAs(t, c, front, "app.test", nil)
		clients[body] = c
	}
	for i := 0; i < 100; i++ {
		switch i {
		case 30:
			split.Weight, split.Step = 90, 2
			if err := r.SetCanary(context.Background(), "app/prod", split); err != nil {
				t.Fatal(err)
			}
		case 60:
			MustDeploy(t, r, rc, green.addr())
		}
		for want, c := range clients {
			if body, _ := getAs(t, c, front, "app.test", nil); body != want {
				t.Fatalf("request %d of the %s client: got %s", i, want, body)
			}
		}
	}
	// Past the bound the stable client goes to what serves now.
	waitFor(t, "the sticky bound to pass", 5*time.Second, func() bool {
		body, _ := getAs(t, clients["blue"], front, "app.test", nil)
		return body == "green"
	})
	waitFor(t, "the tail to end", 5*time.Second, func() bool {
		_, err := r.CanaryStatus(context.Background(), "app/prod")
		return gantry.ErrorCode(err) == gantry.ENOTFOUND
	})
}

func TestCanaryClearSendsEveryoneToStable(t *testing.T) {
	r, front := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	MustDeploy(t, r, fastRoute("app/prod", "app.test"), blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 100, 1)); err != nil {
		t.Fatal(err)
	}
	c := testClient()
	if body, _ := getAs(t, c, front, "app.test", nil); body != "green" {
		t.Fatalf("at 100%%: got %s", body)
	}
	if err := r.ClearCanary(context.Background(), "app/prod"); err != nil {
		t.Fatal(err)
	}
	for _, hdr := range []map[string]string{nil, {"X-Canary": "yes"}, {"Cookie": ReleaseCookie + "=green:1.1.0"}} {
		if body, cookie := getAs(t, c, front, "app.test", hdr); body != "blue" || cookie != "" {
			t.Errorf("after clear with %v: got %s cookie %q, want blue and no cookie", hdr, body, cookie)
		}
	}
	st, _ := r.Status(context.Background())
	if len(st) != 1 || len(st[0].Active) != 1 || st[0].Active[0].Addr != blue.addr() {
		t.Errorf("status after clear: %+v", st)
	}
}

func TestCanaryRefusesBadSplits(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	MustDeploy(t, r, fastRoute("app/prod", "app.test"), blue.addr())
	bad := refusedAddr(t)
	for name, s := range map[string]gantry.CanarySplit{
		"weight":    {Candidate: []string{green.addr()}, Weight: 101},
		"no target": {Weight: 5},
		"labels":    {Candidate: []string{green.addr()}, Weight: 5, StableRelease: "a b", CandidateRelease: "c"},
		"same":      {Candidate: []string{green.addr()}, Weight: 5, StableRelease: "a", CandidateRelease: "a"},
		"match":     {Candidate: []string{green.addr()}, Weight: 5, Match: &gantry.CanaryMatch{Value: "x"}},
	} {
		if err := r.SetCanary(context.Background(), "app/prod", s); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
	rc := fastRoute("app/prod", "app.test")
	rc.DeployTimeout = 300 * time.Millisecond
	MustDeploy(t, r, rc, blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", gantry.CanarySplit{Candidate: []string{bad}, Weight: 5}); gantry.ErrorCode(err) != gantry.EUNAVAILABLE {
		t.Errorf("unhealthy candidate: err %v, want EUNAVAILABLE", err)
	}
	if _, err := r.CanaryStatus(context.Background(), "app/prod"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("no split after a refused one: err %v", err)
	}
}

// A router restarted from its snapshot splits as before.
func TestCanarySurvivesSnapshot(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	MustDeploy(t, r, fastRoute("app/prod", "app.test"), blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 100, 3)); err != nil {
		t.Fatal(err)
	}
	st := r.Snapshot()
	if len(st.Routes) != 1 || st.Routes[0].Canary == nil || st.Routes[0].Canary.Step != 3 {
		t.Fatalf("snapshot: %+v", st)
	}
	r2, front2 := MustRouter(t, Config{})
	if err := r2.Restore(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if body, cookie := getAs(t, testClient(), front2, "app.test", nil); body != "green" || cookie != "green:1.1.0" {
		t.Errorf("after restore: got %s cookie %q", body, cookie)
	}
	cs, err := r2.CanaryStatus(context.Background(), "app/prod")
	if err != nil || cs.Split.Step != 3 || cs.Candidate.Requests != 1 {
		t.Errorf("restored status: %+v %v", cs, err)
	}
}

// A switch elsewhere during the sticky bound ends it: the clients of the
// old release go to what serves now, and its set is let go.
func TestCanaryTailEndsAtTheNextSwitch(t *testing.T) {
	r, front := MustRouter(t, Config{})
	blue, green, red := MustBackend(t, "blue"), MustBackend(t, "green"), MustBackend(t, "red")
	rc := fastRoute("app/prod", "app.test")
	MustDeploy(t, r, rc, blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 0, 1)); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := testClient()
	c.Jar = jar
	if body, _ := getAs(t, c, front, "app.test", nil); body != "blue" {
		t.Fatalf("at 0%%: got %s", body)
	}
	MustDeploy(t, r, rc, green.addr())
	if body, _ := getAs(t, c, front, "app.test", nil); body != "blue" {
		t.Fatalf("in the sticky bound: got %s, want blue", body)
	}
	MustDeploy(t, r, rc, red.addr())
	if body, _ := getAs(t, c, front, "app.test", nil); body != "red" {
		t.Errorf("after the next switch: got %s, want red", body)
	}
	if _, err := r.CanaryStatus(context.Background(), "app/prod"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("split left after the next switch: %v", err)
	}
	waitFor(t, "the tail's set to be let go", 5*time.Second, func() bool {
		r.mu.Lock()
		rt := r.routes["app/prod"]
		r.mu.Unlock()
		rt.mu.Lock()
		defer rt.mu.Unlock()
		_, kept := rt.targets[blue.addr()]
		return !kept
	})
}

// After the final switch, the previous release's sticky clients keep it
// across a restart of the router, until the bound the switch set.
func TestCanaryTailSurvivesSnapshot(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	rc := fastRoute("app/prod", "app.test")
	MustDeploy(t, r, rc, blue.addr())
	if err := r.SetCanary(context.Background(), "app/prod", canarySplitFor(green.addr(), 0, 1)); err != nil {
		t.Fatal(err)
	}
	MustDeploy(t, r, rc, green.addr())
	st := r.Snapshot()
	if len(st.Routes) != 1 || st.Routes[0].Canary != nil || st.Routes[0].CanaryTail == nil || st.Routes[0].CanaryTail.Old[0] != blue.addr() {
		t.Fatalf("snapshot after the final switch: %+v, want a tail keeping %s", st.Routes, blue.addr())
	}
	stable := map[string]string{"Cookie": ReleaseCookie + "=blue:1.0.0"}
	r2, front2 := MustRouter(t, Config{})
	if err := r2.Restore(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	c := testClient()
	for i := 0; i < 20; i++ {
		if body, _ := getAs(t, c, front2, "app.test", stable); body != "blue" {
			t.Fatalf("request %d of a sticky client after the restore: got %s, want blue", i, body)
		}
		if body, _ := getAs(t, c, front2, "app.test", nil); body != "green" {
			t.Fatalf("request %d of a new client after the restore: got %s, want green", i, body)
		}
	}
	// The restored tail ends at its bound; one past it is not restored.
	st.Routes[0].CanaryTail.Until = time.Now().Add(300 * time.Millisecond)
	r3, front3 := MustRouter(t, Config{})
	if err := r3.Restore(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if body, _ := getAs(t, c, front3, "app.test", stable); body != "blue" {
		t.Fatalf("before the bound: got %s, want blue", body)
	}
	waitFor(t, "the restored tail to end", 5*time.Second, func() bool {
		body, _ := getAs(t, c, front3, "app.test", stable)
		return body == "green"
	})
	if st := r3.Snapshot(); st.Routes[0].CanaryTail != nil {
		t.Errorf("snapshot after the bound: %+v, want no tail", st.Routes[0].CanaryTail)
	}
	st.Routes[0].CanaryTail.Until = time.Now().Add(-time.Second)
	r4, front4 := MustRouter(t, Config{})
	if err := r4.Restore(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if body, _ := getAs(t, c, front4, "app.test", stable); body != "green" {
		t.Errorf("a tail past its bound restored: got %s, want green", body)
	}
}
