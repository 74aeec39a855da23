// Package delivery computes delivery metrics (deployment frequency, lead
// time, change failure rate, time to restore) from the deployments the
// journal recorded. Compute is a pure function of the records; Service
// reads them from a Store. It changes nothing: no deployment logic lives
// here.
package delivery

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/gantry-dev/gantry"
)

// Journal steps the figures read: when a switch put a release in front of
// traffic, and when the watch's automatic rollback flipped it back.
const (
	stepSwitch       = "switch"
	stepAutoRollback = "auto-rollback"
)

// Steps are the journal steps Compute needs with each deployment.
var Steps = []string{stepSwitch, stepAutoRollback}

// Input is what Compute needs: the deployments of a period, and the commit
// time of the releases they serve.
type Input struct {
	App      string
	From, To time.Time
	// Deployments are oldest first, each with its Steps. Those created at
	// or after To are not counted; they only say what followed a change of
	// the period (a rollback, the next good state).
	Deployments []*gantry.Deployment
	// Envs are environments to report even without deployments.
	Envs []string
	// Commits maps a release ID to its commit time; a release missing
	// from it adds no lead time.
	Commits map[string]time.Time
	// Production names the environments added up as production (nil:
	// gantry.DefaultProduction).
	Production []string
}

// Compute returns the delivery figures of in's period, per environment and
// for its production environments together.
func Compute(in Input) *gantry.DeliveryReport {
	prod := in.Production
	if prod == nil {
		prod = gantry.DefaultProduction
	}
	byEnv := map[string][]*gantry.Deployment{}
	for _, env := range in.Envs {
		byEnv[env] = nil
	}
	for _, d := range in.Deployments {
		switch d.Kind {
		case gantry.KindDeploy, gantry.KindPromote, gantry.KindRollback:
			byEnv[d.Env] = append(byEnv[d.Env], d)
		}
	}
	envs := make([]string, 0, len(byEnv))
	for env := range byEnv {
		envs = append(envs, env)
	}
	sort.Strings(envs)

	rep := &gantry.DeliveryReport{App: in.App, From: in.From.UTC(), To: in.To.UTC(), Environments: []*gantry.DeliveryFigures{}}
	total := newTally(in.From, in.To)
	var prodEnvs []string
	for _, env := range envs {
		ops := byEnv[env]
		sort.SliceStable(ops, func(i, j int) bool {
			if !ops[i].CreatedAt.Equal(ops[j].CreatedAt) {
				return ops[i].CreatedAt.Before(ops[j].CreatedAt)
			}
			return ops[i].ID < ops[j].ID
		})
		t := newTally(in.From, in.To)
		t.count(ops, in.Commits)
		isProd := slices.Contains(prod, env)
		rep.Environments = append(rep.Environments, t.figures([]string{env}, isProd))
		if isProd {
			total.add(t)
			prodEnvs = append(prodEnvs, env)
		}
	}
	if len(prodEnvs) > 0 {
		rep.Production = total.figures(prodEnvs, true)
	}
	return rep
}

// tally is what one environment's (or several's) deployments add up to,
// before it is summarised.
type tally struct {
	from, to    time.Time
	deployments int
	succeeded   int
	failures    gantry.DeliveryFailures
	leadTimes   []time.Duration
	restores    []time.Duration
	unrestored  int
	days        []gantry.DeliveryDay
	dayLeads    [][]time.Duration
	firstDay    time.Time
}

func newTally(from, to time.Time) *tally {
	t := &tally{from: from, to: to}
	first := from.UTC().Truncate(24 * time.Hour)
	for d := first; d.Before(to); d = d.Add(24 * time.Hour) {
		t.days = append(t.days, gantry.DeliveryDay{Date: d.Format(time.DateOnly)})
	}
	t.dayLeads = make([][]time.Duration, len(t.days))
	t.firstDay = first
	return t
}

// day returns the index in t.days of the UTC day of at.
func (t *tally) day(at time.Time) int {
	i := int(at.UTC().Sub(t.firstDay) / (24 * time.Hour))
	return min(max(i, 0), len(t.days)-1)
}

// count adds up one environment's operations, oldest first: deploys and
// promotions are the changes counted; rollbacks only end what they follow.
func (t *tally) count(ops []*gantry.Deployment, commits map[string]time.Time) {
	for i, d := range ops {
		if d.CreatedAt.Before(t.from) || !d.CreatedAt.Before(t.to) || d.Kind == gantry.KindRollback {
			continue
		}
		if d.State != gantry.DeploymentSucceeded && d.State != gantry.DeploymentFailed && d.State != gantry.DeploymentRecovered {
			continue // still running or paused: not a finished change yet
		}
		t.deployments++
		day := t.day(d.CreatedAt)
		t.days[day].Deployments++
		failed := true
		switch back, ok := autoRollback(d); {
		case ok:
			t.failures.AutoRolledBack++
			t.restores = append(t.restores, nonNegative(back.Sub(servedAt(d))))
		case d.State != gantry.DeploymentSucceeded:
			t.failures.Failed++
			t.restore(servedAt(d), ops[i+1:])
		default:
			t.succeeded++
			served := servedAt(d)
			if c, ok := commits[d.ReleaseID]; ok && !c.IsZero() {
				lead := nonNegative(served.Sub(c))
				t.leadTimes = append(t.leadTimes, lead)
				t.dayLeads[day] = append(t.dayLeads[day], lead)
			}
			if i+1 < len(ops) && ops[i+1].Kind == gantry.KindRollback {
				t.failures.RolledBack++
				t.restore(served, ops[i+1:])
			} else {
				failed = false
			}
		}
		if failed {
			t.failures.Total++
			t.days[day].Failures++
		}
	}
}

// restore records the time from a failure at since to the first of next
// that served well, or an unrestored failure when none did.
func (t *tally) restore(since time.Time, next []*gantry.Deployment) {
	for _, n := range next {
		if n.State == gantry.DeploymentSucceeded {
			t.restores = append(t.restores, nonNegative(servedAt(n).Sub(since)))
			return
		}
	}
	t.unrestored++
}

// add adds o's counts to t; both cover the same period.
func (t *tally) add(o *tally) {
	t.deployments += o.deployments
	t.succeeded += o.succeeded
	t.failures.Total += o.failures.Total
	t.failures.AutoRolledBack += o.failures.AutoRolledBack
	t.failures.Failed += o.failures.Failed
	t.failures.RolledBack += o.failures.RolledBack
	t.leadTimes = append(t.leadTimes, o.leadTimes...)
	t.restores = append(t.restores, o.restores...)
	t.unrestored += o.unrestored
	for i := range t.days {
		t.days[i].Deployments += o.days[i].Deployments
		t.days[i].Failures += o.days[i].Failures
		t.dayLeads[i] = append(t.dayLeads[i], o.dayLeads[i]...)
	}
}

func (t *tally) figures(envs []string, production bool) *gantry.DeliveryFigures {
	f := &gantry.DeliveryFigures{
		Envs: envs, Production: production,
		Deployments: t.deployments, Succeeded: t.succeeded, Failures: t.failures,
		LeadTime: Stats(t.leadTimes), TimeToRestore: Stats(t.restores), Unrestored: t.unrestored,
		Days: slices.Clone(t.days),
	}
	if days := t.to.Sub(t.from).Hours() / 24; days > 0 {
		f.PerDay = round(float64(t.succeeded) / days)
	}
	if t.deployments > 0 {
		f.ChangeFailureRate = round(float64(t.failures.Total) / float64(t.deployments))
	}
	for i := range f.Days {
		f.Days[i].LeadTimeMedian = Stats(t.dayLeads[i]).Median
	}
	return f
}

// servedAt is when d's release started serving: the end of its first
// switch that went through, else (it never switched, or its runtime has no
// switch step) when d finished. For a failed change that is when its
// failure began.
func servedAt(d *gantry.Deployment) time.Time {
	for _, s := range d.Steps {
		if s.Name == stepSwitch && s.State == gantry.StepDone && !s.EndedAt.IsZero() {
			return s.EndedAt
		}
	}
	if !d.FinishedAt.IsZero() {
		return d.FinishedAt
	}
	return d.CreatedAt
}

// autoRollback returns when the watch's automatic rollback of d put the
// previous release back, if it did.
func autoRollback(d *gantry.Deployment) (time.Time, bool) {
	for _, s := range d.Steps {
		if s.Name == stepAutoRollback && s.State == gantry.StepDone && !s.EndedAt.IsZero() {
			return s.EndedAt, true
		}
	}
	return time.Time{}, false
}

func nonNegative(d time.Duration) time.Duration { return max(d, 0) }

// Stats summarises durations: median (the mean of the two middle values
// of an even count), mean, 90th percentile (nearest rank) and maximum, in
// seconds rounded to the millisecond.
func Stats(ds []time.Duration) gantry.DurationStats {
	if len(ds) == 0 {
		return gantry.DurationStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	p90 := s[int(math.Ceil(0.9*float64(n)))-1]
	return gantry.DurationStats{Count: n, Median: round(median.Seconds()), Mean: round(sum.Seconds() / float64(n)),
		P90: round(p90.Seconds()), Max: round(s[n-1].Seconds())}
}

// round keeps three decimals: milliseconds, or a rate to 0.1 %.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
