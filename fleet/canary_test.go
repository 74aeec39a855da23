package fleet_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
)

// ask sends GET / to the router with a header and a release cookie (each
// optional) and returns the body and the release cookie it was given.
func (f *follower) ask(t *testing.T, header, cookie string) (string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://shop.localhost/", nil)
	if header != "" {
		req.Header.Set("X-Canary", header)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: proxy.ReleaseCookie, Value: cookie})
	}
	f.router.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("router answered %d: %s", rec.Code, rec.Body)
	}
	given := ""
	for _, c := range rec.Result().Cookies() {
		if c.Name == proxy.ReleaseCookie {
			given = c.Value
		}
	}
	return rec.Body.String(), given
}

func splitOf(green string, weight, step int) gantry.CanarySplit {
	return gantry.CanarySplit{Candidate: []string{green}, Weight: weight, Step: step, Sticky: time.Minute,
		StableRelease: "blue:1.0.0", CandidateRelease: "green:1.1.0", Match: &gantry.CanaryMatch{Header: "X-Canary", Value: "1"}}
}

// TestCanaryOnEveryRouter: a canary's split reaches every following router:
// testers reach the candidate at 0% on each, a client keeps its release
// whichever router answers it, the figures are summed over the routers,
// and after the final switch each router keeps the previous release for
// the clients whose cookie names it.
func TestCanaryOnEveryRouter(t *testing.T) {
	_, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCanary(ctx, route.Name, splitOf(green, 0, 1)); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if got, _ := f.ask(t, "", ""); got != "blue" {
			t.Errorf("r%d at 0%%: a client got %q, want blue", i+1, got)
		}
		if got, _ := f.ask(t, "1", ""); got != "green" {
			t.Errorf("r%d at 0%%: a tester got %q, want green", i+1, got)
		}
	}
	if err := r.SetCanary(ctx, route.Name, splitOf(green, 50, 2)); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	const perRouter = 100
	for i, f := range fs {
		for range perRouter {
			body, given := f.ask(t, "", "")
			got[fmt.Sprintf("r%d %s", i+1, body)]++
			if want := map[string]string{"blue": "blue:1.0.0", "green": "green:1.1.0"}[body]; given != want {
				t.Fatalf("r%d: %s answered with release cookie %q, want %q", i+1, body, given, want)
			}
		}
		// A cookie given by one router holds on every router.
		for _, rel := range []string{"blue", "green"} {
			for range 20 {
				if body, _ := f.ask(t, "", rel+map[string]string{"blue": ":1.0.0", "green": ":1.1.0"}[rel]); body != rel {
					t.Fatalf("r%d: a client with the %s cookie got %q", i+1, rel, body)
				}
			}
		}
	}
	for i := range fs {
		// 50 of 100 each way; five sd is 25.
		if n := got[fmt.Sprintf("r%d green", i+1)]; n < 25 || n > 75 {
			t.Errorf("r%d at 50%%: the candidate got %d of %d new clients", i+1, n, perRouter)
		}
	}
	// The control side sums what the routers report (each every 100ms).
	var st *gantry.CanaryStatus
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		st, err = r.CanaryStatus(ctx, route.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Stable.Requests+st.Candidate.Requests == 2*perRouter+4*20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCand := int64(got["r1 green"]+got["r2 green"]) + 2*20
	if st.Split.Step != 2 || st.Candidate.Requests != wantCand || st.Stable.Requests+st.Candidate.Requests != 2*perRouter+4*20 ||
		len(st.Candidate.LatencyMicros) != int(wantCand) || st.Candidate.P99 <= 0 {
		t.Errorf("summed figures: step %d, stable %d, candidate %d (%d sampled, p99 %s); want step 2, candidate %d of %d",
			st.Split.Step, st.Stable.Requests, st.Candidate.Requests, len(st.Candidate.LatencyMicros), st.Candidate.P99, wantCand, 2*perRouter+4*20)
	}
	// The final switch: new clients get green everywhere; a client given
	// blue keeps it on every router until the sticky bound.
	if _, err := r.Deploy(ctx, route, []string{green}); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if body, _ := f.ask(t, "", ""); body != "green" {
			t.Errorf("r%d after the switch: a new client got %q, want green", i+1, body)
		}
		if body, _ := f.ask(t, "", "blue:1.0.0"); body != "blue" {
			t.Errorf("r%d after the switch: a client given blue got %q, want blue until its bound", i+1, body)
		}
	}
	if _, err := r.CanaryStatus(ctx, route.Name); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("canary status after the switch: got %v, want ENOTFOUND", err)
	}
}

// TestCanaryClearedOnEveryRouter: an abort puts every request back on the
// stable release on each router, candidate cookies included.
func TestCanaryClearedOnEveryRouter(t *testing.T) {
	_, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCanary(ctx, route.Name, splitOf(green, 100, 1)); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if body, _ := f.ask(t, "", ""); body != "green" {
			t.Fatalf("r%d at 100%%: got %q, want green", i+1, body)
		}
	}
	if err := r.ClearCanary(ctx, route.Name); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		for _, c := range []string{"", "green:1.1.0"} {
			if body, _ := f.ask(t, "1", c); body != "blue" {
				t.Errorf("r%d after the abort (cookie %q, tester header): got %q, want blue", i+1, c, body)
			}
		}
	}
	if err := r.ClearCanary(ctx, route.Name); err != nil {
		t.Errorf("a second clear: %v", err)
	}
}
