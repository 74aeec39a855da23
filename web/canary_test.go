package web_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// canaryStub stands in for the orchestrator's canary service (package
// deploy runs real canaries; here only what the dashboard draws matters).
type canaryStub struct {
	mu  sync.Mutex
	rep *gantry.CanaryReport
}

func (c *canaryStub) set(rep *gantry.CanaryReport) {
	c.mu.Lock()
	c.rep = rep
	c.mu.Unlock()
}

func (c *canaryStub) CanaryStatus(ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rep == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no canary runs on %s/%s", app, env)
	}
	rep := *c.rep
	return &rep, nil
}

func (c *canaryStub) CanarySteer(ctx context.Context, app, env, actor string, promote bool) (*gantry.CanaryReport, error) {
	return c.CanaryStatus(ctx, app, env)
}

func figuresOf(n, errs int64, p50, p99 time.Duration) gantry.SlotFigures {
	return gantry.SlotFigures{Requests: n, Errors5xx: errs, P50: p50, P99: p99}
}

// TestCanaryPanelLive: the page of a running canary shows each step's
// figures per release and its verdict, and the live stream redraws them as
// the figures change.
func TestCanaryPanelLive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, Strategy: gantry.StrategyCanary, ReleaseID: "shop-1.1.0",
		Version: "1.1.0", Actor: "dev", State: gantry.DeploymentRunning, CreatedAt: time.Now()}
	if err := f.db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	rep := &gantry.CanaryReport{App: "shop", Env: "test", DeploymentID: d.ID, Stable: "blue:1.0.0", Candidate: "green:1.1.0",
		Steps: []gantry.CanaryStep{{Weight: 5}, {Weight: 50}}, Step: 2, Weight: 50,
		Verdicts: []gantry.CanaryVerdict{{Step: 1, Weight: 5, Verdict: "pass", Reason: "error rate (two-proportion z-test): z = 0.12",
			Stable: figuresOf(950, 1, 2*time.Millisecond, 8*time.Millisecond), Candidate: figuresOf(50, 0, 3*time.Millisecond, 16*time.Millisecond)}},
		Live: &gantry.CanaryVerdict{Step: 2, Weight: 50, Stable: figuresOf(10, 0, time.Millisecond, 4*time.Millisecond), Candidate: figuresOf(12, 3, time.Millisecond, 4*time.Millisecond)}}
	f.canaries.set(rep)
	b := newBrowser(t, f.url)
	b.signIn(f.token(t, "viewer", gantry.RoleViewer))
	loc := "/apps/shop/deployments/" + strconv.FormatInt(d.ID, 10)
	_, page, _ := b.get(loc)
	for _, want := range []string{"Canary: blue:1.0.0 (stable) → green:1.1.0 (candidate)", "step 2 of 2, 50% of new clients",
		"<strong>pass</strong>: error rate (two-proportion z-test)", "step 2 (now)", "25.00%", "16.0ms",
		`<rect class="p99 cand" width="240"`, `<rect class="p99" width="120"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	resp, err := b.c.Get(f.url + loc + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	next := func() string {
		var ev strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	if ev := next(); !strings.Contains(ev, "event: steps") || !strings.Contains(ev, ">12<") {
		t.Fatalf("first event: %.400s", ev)
	}
	more := *rep
	live := *rep.Live
	live.Candidate = figuresOf(480, 3, time.Millisecond, 4*time.Millisecond)
	more.Live = &live
	f.canaries.set(&more)
	if ev := next(); !strings.Contains(ev, ">480<") || !strings.Contains(ev, "0.62%") {
		t.Errorf("the stream did not redraw the new figures: %.600s", ev)
	}
}
