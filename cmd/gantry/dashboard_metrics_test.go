package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// seedDelivery writes thirty days of an app's deliveries into the store,
// ending at now: a deploy to test each day (every ninth fails), a
// promotion to prod every other day, some rolled back by hand, some by the
// watch. Real deployments in a test all happen within a minute; a month
// is what the page is for.
func seedDelivery(t *testing.T, st gantry.Store, app string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateApp(ctx, &gantry.App{Name: app, Repo: "/nonexistent/" + app}))
	for _, env := range []string{"test", "prod"} {
		must(st.PutEnvironment(ctx, &gantry.Environment{App: app, Name: env}))
	}
	record := func(env, kind, rel, state string, created time.Time, steps ...gantry.Step) {
		d := &gantry.Deployment{App: app, Env: env, Kind: kind, ReleaseID: rel, Actor: "ci", State: gantry.DeploymentRunning, CreatedAt: created}
		must(st.CreateDeployment(ctx, d))
		end := created
		for _, s := range steps {
			s := s
			must(st.AppendStep(ctx, d.ID, &s))
			end = s.EndedAt
		}
		d.State, d.FinishedAt = state, end.Add(10*time.Second)
		must(st.UpdateDeployment(ctx, d))
	}
	step := func(name, state string, end time.Time) gantry.Step {
		return gantry.Step{Name: name, State: state, StartedAt: end.Add(-2 * time.Second), EndedAt: end}
	}
	first := now.Truncate(24*time.Hour).AddDate(0, 0, -29)
	for i := 0; i < 30; i++ {
		day := first.AddDate(0, 0, i)
		rel := fmt.Sprintf("r%02d", i)
		must(st.CreateRelease(ctx, &gantry.Release{ID: rel, App: app, Version: fmt.Sprintf("1.%d.0", i),
			CommittedAt: day.Add(time.Duration(6+i%4) * time.Hour), CreatedAt: day.Add(8 * time.Hour)}))
		at := day.Add(9 * time.Hour)
		if at.After(now) {
			break
		}
		if i%9 == 4 {
			record("test", gantry.KindDeploy, rel, gantry.DeploymentFailed, at, step("health", gantry.StepFailed, at.Add(time.Minute)))
			continue
		}
		record("test", gantry.KindDeploy, rel, gantry.DeploymentSucceeded, at, step("switch", gantry.StepDone, at.Add(2*time.Minute)))
		at = day.Add(13 * time.Hour)
		if i%2 != 0 || at.After(now) {
			continue
		}
		switched := at.Add(time.Minute + time.Duration(i)*time.Second)
		switch {
		case i%10 == 6:
			record("prod", gantry.KindPromote, rel, gantry.DeploymentFailed, at, step("switch", gantry.StepDone, switched),
				step("auto-rollback", gantry.StepDone, switched.Add(5*time.Minute)))
		case i%8 == 2:
			record("prod", gantry.KindPromote, rel, gantry.DeploymentSucceeded, at, step("switch", gantry.StepDone, switched))
			back := at.Add(time.Hour + time.Duration(i)*time.Minute)
			record("prod", gantry.KindRollback, "", gantry.DeploymentSucceeded, back, step("switch", gantry.StepDone, back.Add(5*time.Second)))
		default:
			record("prod", gantry.KindPromote, rel, gantry.DeploymentSucceeded, at, step("switch", gantry.StepDone, switched))
		}
	}
}

// TestMetricsPageInChromium opens the delivery metrics page of a month of
// deliveries in Chromium: its figures are the API's, its charts have one
// bar per day with deployments, nothing is loaded from elsewhere, and a
// screenshot is saved (docs/screenshots/dashboard-metrics.png when
// GANTRY_SCREENSHOT_DIR=docs/screenshots).
func TestMetricsPageInChromium(t *testing.T) {
	ctx := browserContext(t)
	s := openAccessServer(t, io.Discard)
	seedDelivery(t, s.State, "shop", time.Now())
	secret := mustToken(t, s, "viewer", "viewer")
	rep, err := api.NewClient(s.APIURL, secret).Delivery(context.Background(), gantry.DeliveryQuery{App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Production
	if p == nil || p.Deployments == 0 || p.Failures.AutoRolledBack == 0 || p.Failures.RolledBack == 0 {
		t.Fatalf("the seeded month should have promotions, rollbacks and automatic ones: %+v", p)
	}
	wantBars := 0
	for _, d := range p.Days {
		if d.Deployments > d.Failures {
			wantBars++
		}
		if d.Failures > 0 {
			wantBars++
		}
	}

	sh := newShooter(t, ctx)
	signIn(t, ctx, s.APIURL+"/signin?next=/apps/shop/metrics", secret, "#delivery")
	var page struct {
		Rate     string   `json:"rate"`
		Freq     string   `json:"freq"`
		Lead     string   `json:"lead"`
		Bars     int      `json:"bars"`
		Width    float64  `json:"width"`
		Rows     int      `json:"rows"`
		Foreign  []string `json:"foreign"`
		Scripts  int      `json:"scripts"`
		Titles   []string `json:"titles"`
		Location string   `json:"location"`
	}
	run(t, ctx, "read the metrics page", chromedp.Evaluate(`(() => {
	  const text = sel => (document.querySelector(sel) || {}).textContent || "";
	  const svg = document.querySelector(".charts figure svg");
	  return {
	    rate: text("#failure-rate .figure").trim(),
	    freq: text("#frequency .figure").trim(),
	    lead: text("#lead-time .figure").trim(),
	    bars: svg ? svg.querySelectorAll("rect").length : -1,
	    width: svg ? svg.getBoundingClientRect().width : 0,
	    rows: document.querySelectorAll("#by-env tbody tr").length,
	    foreign: performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith(location.origin)),
	    scripts: document.scripts.length,
	    titles: [...document.querySelectorAll(".charts svg title")].slice(0, 3).map(e => e.textContent),
	    location: location.pathname,
	  };
	})()`, &page))
	sh.shot("dashboard-metrics")

	if want := strconv.FormatFloat(float64(int(p.ChangeFailureRate*1000+0.5))/10, 'f', -1, 64) + "%"; page.Rate != want {
		t.Errorf("change failure rate tile: got %q, want %q (the API's %v)", page.Rate, want, p.ChangeFailureRate)
	}
	if want := strconv.FormatFloat(p.PerDay, 'f', 2, 64); !strings.HasPrefix(page.Freq, strings.TrimRight(strings.TrimRight(want, "0"), ".")) {
		t.Errorf("frequency tile: got %q, want it to start with %q", page.Freq, want)
	}
	if want := gantry.HumanSeconds(p.LeadTime.Median); !strings.HasPrefix(page.Lead, want) {
		t.Errorf("lead time tile: got %q, want it to start with %q", page.Lead, want)
	}
	if page.Bars != wantBars || page.Width < 300 {
		t.Errorf("deployments chart: got %d bars %v px wide, want %d bars (one per day with good changes, one per day with failures) drawn wide", page.Bars, page.Width, wantBars)
	}
	if page.Rows != 2 || len(page.Foreign) != 0 || page.Scripts != 0 {
		t.Errorf("page: got %d environment rows, foreign resources %v, %d scripts; want 2, none, none", page.Rows, page.Foreign, page.Scripts)
	}
	t.Logf("metrics page %s: rate %s, frequency %s, lead %s, %d bars; first bars: %v", page.Location, page.Rate, page.Freq, page.Lead, page.Bars, page.Titles)

	// One environment, chosen on the page.
	run(t, ctx, "choose test", chromedp.Click(`#by-env a[href$="env=test"]`, chromedp.ByQuery), chromedp.WaitVisible("#delivery", chromedp.ByQuery))
	var label string
	run(t, ctx, "read the scope", chromedp.Text("#delivery h1 .muted", &label, chromedp.ByQuery))
	if !strings.Contains(label, "test") {
		t.Errorf("after choosing test, the page says %q", label)
	}
}
