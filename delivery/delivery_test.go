package delivery

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// at is a time of November 2026, UTC.
func at(day, hour, min int, sec float64) time.Time {
	return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC).Add(time.Duration(sec * float64(time.Second)))
}

// op is a deployment of the known journal: switched (a zero time: no
// switch step), and autoBack (zero: no automatic rollback).
func op(id int64, env, kind, rel, state string, created, switched, autoBack, finished time.Time) *gantry.Deployment {
	d := &gantry.Deployment{ID: id, App: "shop", Env: env, Kind: kind, ReleaseID: rel, State: state,
		CreatedAt: created, FinishedAt: finished}
	if !switched.IsZero() {
		d.Steps = append(d.Steps, gantry.Step{Name: "switch", State: gantry.StepDone, StartedAt: switched.Add(-time.Second), EndedAt: switched})
	}
	if !autoBack.IsZero() {
		d.Steps = append(d.Steps, gantry.Step{Name: "auto-rollback", State: gantry.StepDone, StartedAt: autoBack.Add(-time.Second), EndedAt: autoBack})
	}
	return d
}

var none time.Time

// knownJournal is ten days of shop (1–10 November 2026), with the figures
// worked out by hand in TestComputeKnownJournal.
func knownJournal() Input {
	const ok, failed = gantry.DeploymentSucceeded, gantry.DeploymentFailed
	ds := []*gantry.Deployment{
		op(1, "prod", gantry.KindPromote, "r0", ok, at(1, 0, 0, 0).Add(-time.Hour), none, none, at(1, 0, 0, 0).Add(-50*time.Minute)), // before the period
		op(2, "test", gantry.KindDeploy, "r1", ok, at(1, 9, 0, 0), at(1, 9, 1, 0), none, at(1, 9, 2, 0)),
		op(3, "prod", gantry.KindPromote, "r1", ok, at(1, 10, 0, 0), at(1, 10, 5, 0), none, at(1, 10, 10, 0)),
		op(4, "test", gantry.KindDeploy, "r2", ok, at(2, 10, 0, 0), at(2, 10, 0, 20), none, at(2, 10, 1, 0)),
		op(5, "prod", gantry.KindPromote, "r2", ok, at(2, 12, 0, 0), at(2, 12, 0, 30), none, at(2, 12, 1, 0)),
		op(6, "prod", gantry.KindRollback, "r1", ok, at(2, 13, 0, 0), at(2, 13, 0, 1.5), none, at(2, 13, 0, 2)),
		op(7, "prod", gantry.KindClone, "", ok, at(3, 8, 0, 0), none, none, at(3, 8, 1, 0)), // not a change
		op(8, "test", gantry.KindDeploy, "r3", ok, at(4, 10, 30, 0), at(4, 10, 31, 0), none, at(4, 10, 32, 0)),
		op(9, "prod", gantry.KindPromote, "r3", failed, at(4, 11, 0, 0), at(4, 11, 1, 0), at(4, 11, 6, 0), at(4, 11, 6, 1)),
		op(10, "prod", gantry.KindDeploy, "r4", failed, at(6, 1, 0, 0), none, none, at(6, 1, 2, 0)),
		op(11, "prod", gantry.KindPromote, "r4", ok, at(6, 2, 0, 0), at(6, 2, 0, 10), none, at(6, 2, 1, 0)),
		op(12, "test", gantry.KindDeploy, "imported", ok, at(8, 11, 0, 0), at(8, 11, 0, 30), none, at(8, 11, 1, 0)),
		op(13, "prod", gantry.KindPromote, "r5", gantry.DeploymentRunning, at(8, 13, 0, 0), none, none, none),
		op(14, "test", gantry.KindDeploy, "r4", failed, at(9, 10, 0, 0), none, none, at(9, 10, 5, 0)),
		op(15, "prod", gantry.KindDeploy, "r5", gantry.DeploymentRecovered, at(10, 23, 0, 0), none, none, at(10, 23, 30, 0)),
		op(16, "prod", gantry.KindRollback, "r4", ok, at(11, 1, 0, 0), at(11, 1, 0, 2), none, at(11, 1, 0, 3)), // after the period: restores #15
	}
	return Input{
		App: "shop", From: at(1, 0, 0, 0), To: at(11, 0, 0, 0), Deployments: ds, Envs: []string{"qa"},
		Commits: map[string]time.Time{
			"r0": at(1, 0, 0, 0).Add(-48 * time.Hour),
			"r1": at(1, 8, 0, 0), "r2": at(2, 9, 0, 0), "r3": at(4, 10, 0, 0), "r4": at(6, 0, 0, 0), "r5": at(8, 12, 0, 0),
		},
	}
}

// TestComputeKnownJournal checks Compute against figures worked out by
// hand from knownJournal (docs/metrics.md defines them):
//
// prod: changes #3 #5 #9 #10 #11 #15 = 6 (#13 runs, #1 is before, #6 #16
// are rollbacks, #7 a clone); succeeded #3 #5 #11 = 3, so 0.3 a day;
// failures #5 (rolled back by #6), #9 (automatic rollback), #10 (failed),
// #15 (recovered) = 4 of 6. Lead times #3 10:05−08:00 = 7500 s, #5
// 12:00:30−09:00 = 10830 s, #11 02:00:10−00:00 = 7210 s. Restores #5
// 12:00:30→13:00:01.5 = 3571.5 s, #9 11:01→11:06 = 300 s, #10 01:02→02:00:10
// = 3490 s, #15 23:30→01:00:02 (by #16, after the period) = 5402 s:
// median (3490+3571.5)/2 = 3530.75, mean 12763.5/4 = 3190.875. Lead
// times: median 7500, mean 25540/3 = 8513.333.
//
// test: changes #2 #4 #8 #12 #14 = 5, succeeded 4 (0.4 a day), one failure
// (#14), never restored. Lead times #2 3660 s, #4 3620 s, #8 1860 s; #12's
// release has no commit time.
func TestComputeKnownJournal(t *testing.T) {
	rep := Compute(knownJournal())
	if len(rep.Environments) != 3 {
		t.Fatalf("got %d environments, want prod, qa and test", len(rep.Environments))
	}
	prod, qa, test := rep.Environments[0], rep.Environments[1], rep.Environments[2]
	wantProd := gantry.DeliveryFigures{
		Envs: []string{"prod"}, Production: true, Deployments: 6, Succeeded: 3, PerDay: 0.3,
		Failures:          gantry.DeliveryFailures{Total: 4, AutoRolledBack: 1, Failed: 2, RolledBack: 1},
		ChangeFailureRate: 0.667,
		LeadTime:          gantry.DurationStats{Count: 3, Median: 7500, Mean: 8513.333, P90: 10830, Max: 10830},
		TimeToRestore:     gantry.DurationStats{Count: 4, Median: 3530.75, Mean: 3190.875, P90: 5402, Max: 5402},
	}
	wantTest := gantry.DeliveryFigures{
		Envs: []string{"test"}, Deployments: 5, Succeeded: 4, PerDay: 0.4,
		Failures:          gantry.DeliveryFailures{Total: 1, Failed: 1},
		ChangeFailureRate: 0.2,
		LeadTime:          gantry.DurationStats{Count: 3, Median: 3620, Mean: 3046.667, P90: 3660, Max: 3660},
		Unrestored:        1,
	}
	wantQA := gantry.DeliveryFigures{Envs: []string{"qa"}}
	for _, c := range []struct {
		got  *gantry.DeliveryFigures
		want gantry.DeliveryFigures
	}{{prod, wantProd}, {test, wantTest}, {qa, wantQA}, {rep.Production, wantProd}} {
		sameFigures(t, c.got, c.want)
	}

	// Day by day (prod): 1st #3, 2nd #5 failed, 4th #9 failed, 6th #10
	// failed and #11, 10th #15 failed; ten days in all.
	if len(prod.Days) != 10 || prod.Days[0].Date != "2026-11-01" || prod.Days[9].Date != "2026-11-10" {
		t.Fatalf("days: got %d from %v, want the ten days 2026-11-01 … 2026-11-10", len(prod.Days), prod.Days)
	}
	wantDays := map[int]gantry.DeliveryDay{
		0: {Deployments: 1, LeadTimeMedian: 7500},
		1: {Deployments: 1, Failures: 1, LeadTimeMedian: 10830},
		3: {Deployments: 1, Failures: 1},
		5: {Deployments: 2, Failures: 1, LeadTimeMedian: 7210},
		9: {Deployments: 1, Failures: 1},
	}
	for i, d := range prod.Days {
		w := wantDays[i]
		w.Date = d.Date
		if d != w {
			t.Errorf("prod day %d: got %+v, want %+v", i, d, w)
		}
	}
}

// TestComputeProductionSet adds test to production: the figures add up
// (lead times 1860 3620 3660 7210 7500 10830 s: median 5435, mean 5780).
func TestComputeProductionSet(t *testing.T) {
	in := knownJournal()
	in.Production = []string{"prod", "test"}
	got := Compute(in).Production
	want := gantry.DeliveryFigures{
		Envs: []string{"prod", "test"}, Production: true, Deployments: 11, Succeeded: 7, PerDay: 0.7,
		Failures:          gantry.DeliveryFailures{Total: 5, AutoRolledBack: 1, Failed: 3, RolledBack: 1},
		ChangeFailureRate: 0.455,
		LeadTime:          gantry.DurationStats{Count: 6, Median: 5435, Mean: 5780, P90: 10830, Max: 10830},
		TimeToRestore:     gantry.DurationStats{Count: 4, Median: 3530.75, Mean: 3190.875, P90: 5402, Max: 5402},
		Unrestored:        1,
	}
	sameFigures(t, got, want)
	if got.Days[5].Deployments != 2 || got.Days[0].Deployments != 2 || got.Days[0].LeadTimeMedian != (3660+7500)/2 {
		t.Errorf("days add up: got day 1 %+v, day 6 %+v", got.Days[0], got.Days[5])
	}
}

// TestComputeWithoutProduction: a period with no production environment
// has no production figures, and an empty one has zeros, not NaN.
func TestComputeWithoutProduction(t *testing.T) {
	in := knownJournal()
	in.Production = []string{"live"}
	if rep := Compute(in); rep.Production != nil {
		t.Errorf("production: got %+v, want none", rep.Production)
	}
	rep := Compute(Input{App: "shop", From: at(1, 0, 0, 0), To: at(1, 12, 0, 0), Envs: []string{"prod"}})
	f := rep.Production
	if f == nil || f.Deployments != 0 || f.ChangeFailureRate != 0 || f.PerDay != 0 || len(f.Days) != 1 {
		t.Errorf("empty period: got %+v, want zeros over one day", f)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("an empty report must encode: %v", err)
	}
}

func TestStats(t *testing.T) {
	s := func(secs ...float64) []time.Duration {
		var out []time.Duration
		for _, x := range secs {
			out = append(out, time.Duration(x*float64(time.Second)))
		}
		return out
	}
	for _, c := range []struct {
		in   []time.Duration
		want gantry.DurationStats
	}{
		{nil, gantry.DurationStats{}},
		{s(5), gantry.DurationStats{Count: 1, Median: 5, Mean: 5, P90: 5, Max: 5}},
		{s(4, 1, 3, 2), gantry.DurationStats{Count: 4, Median: 2.5, Mean: 2.5, P90: 4, Max: 4}},
		{s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100), gantry.DurationStats{Count: 11, Median: 6, Mean: 14.091, P90: 10, Max: 100}},
	} {
		if got := Stats(c.in); got != c.want {
			t.Errorf("Stats(%v): got %+v, want %+v", c.in, got, c.want)
		}
	}
}

// sameFigures compares everything but the days.
func sameFigures(t *testing.T, got *gantry.DeliveryFigures, want gantry.DeliveryFigures) {
	t.Helper()
	if got == nil {
		t.Fatalf("figures of %v: got none", want.Envs)
	}
	g := *got
	g.Days = nil
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("figures of %v:\ngot  %s\nwant %s", want.Envs, gj, wj)
	}
}
