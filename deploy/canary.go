package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
	canaryjudge "github.com/gantry-dev/gantry/internal/judge"
)

// A canary (strategy canary) is a step of the blue-green rollout between
// verify and the switch: the candidate, started and verified, takes a
// growing share of the route's traffic, and each step is judged on the
// router's figures of both sides before the next. A failed verdict, an
// abort or a cancel clears the split at once (every request back on the
// stable slot) and the rollout fails as any other before its switch: the
// candidate stops and a database expansion made for it is rolled back. The
// final 100% is the ordinary switch, so the contract runs only after it.

// canaryPoll bounds how often the router's figures are read in a step.
const (
	canaryPollMin = 100 * time.Millisecond
	canaryPollMax = time.Second
	// canaryRequestsWait bounds a step that counts requests only, so that
	// a quiet route does not hold the environment's lock for ever.
	canaryRequestsWait = time.Hour
)

// CanaryFailure says which test failed a canary step, with its figures
// (Detail), or that someone aborted it. It wraps an EFAILED error so that
// the API and the CLI show Detail.
type CanaryFailure struct {
	Step   int
	Test   string // "error rate", "latency", "traffic", "abort"
	Detail string
}

func (f *CanaryFailure) Error() string {
	return fmt.Sprintf("canary step %d failed on %s: %s", f.Step, f.Test, f.Detail)
}

// Unwrap gives gantry.ErrorCode and gantry.ErrorMessage something to read.
func (f *CanaryFailure) Unwrap() error {
	return gantry.Errorf(gantry.EFAILED, "canary step %d failed on %s: %s", f.Step, f.Test, f.Detail)
}

// canaryRun is a canary in progress, as `gantry canary` sees and steers it.
type canaryRun struct {
	mu     sync.Mutex
	report gantry.CanaryReport
	// cmd carries promote (true) or abort (false), with who asked.
	cmd chan canaryCmd
}

type canaryCmd struct {
	promote bool
	actor   string
}

func (c *canaryRun) snapshot() *gantry.CanaryReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := c.report
	rep.Verdicts = append([]gantry.CanaryVerdict(nil), c.report.Verdicts...)
	if c.report.Live != nil {
		live := *c.report.Live
		rep.Live = &live
	}
	return &rep
}

func (c *canaryRun) update(fn func(rep *gantry.CanaryReport)) {
	c.mu.Lock()
	fn(&c.report)
	c.mu.Unlock()
}

// canary is the canary's state through its steps.
type canary struct {
	o     *Orchestrator
	ro    *rollout
	cr    gantry.CanaryRouter
	route string
	spec  gantry.CanarySpec
	tol   canaryjudge.Tolerance
	split gantry.CanarySplit
	run   *canaryRun
}

// runCanary runs the steps of ro's canary; nil means the switch may go on.
func (o *Orchestrator) runCanary(ctx context.Context, ro *rollout, route gantry.Route, targets []string) error {
	spec := ro.spec.Canary
	if ro.op.strategy != gantry.StrategyCanary || spec == nil || len(targets) == 0 {
		return nil
	}
	active := ro.env.ActiveSlot()
	if active == nil {
		return ro.r.step(ctx, "canary", "no release serves yet, so there is nothing to compare with: the candidate takes all traffic at the switch", func() (string, error) { return "", nil })
	}
	cr, ok := o.Router.(gantry.CanaryRouter)
	if !ok {
		return gantry.Errorf(gantry.EINVALID, "strategy canary needs Gantry's router to split traffic, and this one cannot")
	}
	c := &canary{o: o, ro: ro, cr: cr, route: route.Name, spec: *spec, tol: canaryjudge.ToleranceOf(*spec),
		split: gantry.CanarySplit{Candidate: targets, Sticky: spec.Sticky, Match: spec.Match,
			StableRelease: active.Name + ":" + active.Version, CandidateRelease: ro.cand.Name + ":" + ro.rel.Version},
		run: &canaryRun{cmd: make(chan canaryCmd, 1)}}
	c.run.report = gantry.CanaryReport{App: ro.env.App, Env: ro.env.Name, DeploymentID: ro.r.d.ID,
		Stable: c.split.StableRelease, Candidate: c.split.CandidateRelease, Steps: spec.Steps}
	defer o.trackCanary(ro.r.d.ID, c.run)()
	err := c.steps(ctx)
	if err != nil {
		c.rollBack(ctx, err)
	}
	return err
}

func (c *canary) steps(ctx context.Context) error {
	n := len(c.spec.Steps)
	for i, st := range c.spec.Steps {
		c.split.Step, c.split.Weight = i+1, st.Weight
		for ext := 0; ; ext++ {
			var v gantry.CanaryVerdict
			detail := fmt.Sprintf("step %d/%d: %d%% of new clients to %s for %s", i+1, n, st.Weight, c.split.CandidateRelease, stepLength(st))
			if ext > 0 {
				detail = fmt.Sprintf("step %d/%d extended (%d of %d): %d%% for another %s", i+1, n, ext, c.spec.MaxExtensions, st.Weight, stepLength(st))
			}
			err := c.ro.r.step(ctx, "canary-step", detail, func() (string, error) {
				if err := c.cr.SetCanary(ctx, c.route, c.split); err != nil {
					return "", err
				}
				// The report says a step runs once the router runs it.
				c.run.update(func(rep *gantry.CanaryReport) { rep.Step, rep.Weight, rep.Live = i+1, st.Weight, nil })
				var err error
				v, err = c.judgeStep(ctx, st, ext)
				if err != nil {
					return "", err
				}
				return v.Verdict + ": " + v.Reason, nil
			})
			if err != nil {
				return err
			}
			c.run.update(func(rep *gantry.CanaryReport) { rep.Verdicts = append(rep.Verdicts, v) })
			if v.Verdict == "promoted" {
				return nil
			}
			if v.Verdict != string(canaryjudge.Extended) {
				break
			}
		}
	}
	return nil
}

func stepLength(st gantry.CanaryStep) string {
	switch {
	case st.Duration > 0 && st.Requests > 0:
		return fmt.Sprintf("%s and %d requests", roundDuration(st.Duration), st.Requests)
	case st.Duration > 0:
		return roundDuration(st.Duration).String()
	}
	return fmt.Sprintf("%d requests", st.Requests)
}

// judgeStep waits until the step has lasted its length (and the candidate
// served its requests), reading the router's figures as it goes, then
// judges them. An extended step (ext of them so far) comes back with the
// verdict "extended" while extensions remain; after the last one
// OnInconclusive decides.
func (c *canary) judgeStep(ctx context.Context, st gantry.CanaryStep, ext int) (gantry.CanaryVerdict, error) {
	start := c.o.now()
	poll := canaryPollMax
	if st.Duration > 0 {
		poll = min(max(st.Duration/20, canaryPollMin), canaryPollMax)
	}
	v := gantry.CanaryVerdict{Step: c.split.Step, Weight: c.split.Weight, Extensions: ext}
	for {
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case cmd := <-c.run.cmd:
			if cmd.promote {
				v.Verdict, v.Reason, v.At = "promoted", "promoted by "+cmd.actor+": the remaining steps are skipped", c.o.now()
				return v, nil
			}
			return v, &CanaryFailure{Step: c.split.Step, Test: "abort", Detail: "aborted by " + cmd.actor}
		case <-time.After(poll):
		}
		cs, err := c.cr.CanaryStatus(ctx, c.route)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND {
			// The router lost the split (it restarted without it): put it
			// back; the step's figures start again.
			c.o.logger().Warn("canary: the router has no split; setting it again", "route", c.route)
			if err := c.cr.SetCanary(ctx, c.route, c.split); err != nil {
				c.o.logger().Warn("canary: set the split again", "route", c.route, "error", err)
			}
			start = c.o.now()
			continue
		}
		if err != nil {
			c.o.logger().Warn("canary: router status", "route", c.route, "error", err)
			continue
		}
		// The samples are for the judge; reports carry the counts.
		v.Stable, v.Candidate = cs.Stable.WithoutSample(), cs.Candidate.WithoutSample()
		live := v
		c.run.update(func(rep *gantry.CanaryReport) { rep.Live = &live })
		elapsed := c.o.now().Sub(start)
		served := cs.Candidate.Requests
		if st.Weight == 0 {
			served = cs.Candidate.Targeted
		}
		timeDone := st.Duration == 0 || elapsed >= st.Duration
		// The figures of a step add up through its extensions: each one
		// asks for the step's requests again.
		reqDone := st.Requests == 0 || served >= int64(st.Requests)*int64(ext+1) || st.Duration == 0 && elapsed >= canaryRequestsWait
		if !timeDone || !reqDone {
			continue
		}
		if st.Weight == 0 {
			// Only testers reach the candidate: there is no share of
			// everyone's traffic to compare.
			v.Verdict, v.Reason, v.At = string(canaryjudge.Pass), fmt.Sprintf("testers only: %s sent to the candidate by the match rule; nothing is judged at 0%%", plural(served, "request")), c.o.now()
			return v, nil
		}
		res := canaryjudge.Judge(cs.Stable, cs.Candidate, c.tol)
		v.Verdict, v.Reason, v.At = string(res.Verdict), res.Reason, c.o.now()
		switch {
		case res.Verdict == canaryjudge.Fail && res.Errors.Failed:
			return v, &CanaryFailure{Step: c.split.Step, Test: "error rate", Detail: res.Reason}
		case res.Verdict == canaryjudge.Fail:
			return v, &CanaryFailure{Step: c.split.Step, Test: "latency", Detail: res.Reason}
		case res.Verdict == canaryjudge.Extended && ext >= c.spec.MaxExtensions:
			if c.spec.OnInconclusive == gantry.CanaryOnInconclusivePass {
				v.Verdict, v.Reason = string(canaryjudge.Pass), fmt.Sprintf("passed without a verdict (on_inconclusive: pass) after %d extensions: %s", ext, res.Reason)
				return v, nil
			}
			return v, &CanaryFailure{Step: c.split.Step, Test: "traffic", Detail: fmt.Sprintf("%s after %d extensions (on_inconclusive: fail)", res.Reason, ext)}
		}
		return v, nil
	}
}

// rollBack puts every request back on the stable slot at once; the caller
// then fails the rollout, which stops the candidate.
func (c *canary) rollBack(ctx context.Context, cause error) {
	wctx := context.WithoutCancel(ctx)
	a := c.ro.env.ActiveSlot()
	why := "the canary ended: " + gantry.ErrorMessage(cause)
	var cf *CanaryFailure
	if errors.As(cause, &cf) {
		why = fmt.Sprintf("step %d failed on %s", cf.Step, cf.Test)
	}
	_ = c.ro.r.step(wctx, "canary-rollback", fmt.Sprintf("traffic back on slot %s (%s) at once: %s", a.Name, a.Version, why), func() (string, error) {
		return "", c.cr.ClearCanary(wctx, c.route)
	})
	c.run.update(func(rep *gantry.CanaryReport) { rep.Weight = 0 })
}

// clearCanaries ends, at a recovery, any split the router still has for
// env: every request goes back to the slot that serves before the
// candidate stops. A canary is not resumed after a crash; the note (empty
// when no split was left) says what was ended, for the deployment's record.
func (o *Orchestrator) clearCanaries(ctx context.Context, env *gantry.Environment) (string, error) {
	cr, ok := o.Router.(gantry.CanaryRouter)
	if !ok {
		return "", nil
	}
	names, err := o.routeNames(ctx, env.App, env.Name)
	if err != nil {
		return "", err
	}
	note := ""
	for _, name := range names {
		st, err := cr.CanaryStatus(ctx, name)
		switch {
		case gantry.ErrorCode(err) == gantry.ENOTFOUND:
			continue
		case err == nil && st.Split.Weight >= 100:
			// The tail of a canary that was switched: its sticky clients
			// keep the previous release until its bound.
			continue
		case err == nil && note == "":
			note = fmt.Sprintf("; its canary (step %d, %d%% to %s) was ended, every request back on %s: deploy again to run it anew",
				st.Split.Step, st.Split.Weight, st.Split.CandidateRelease, st.Split.StableRelease)
		}
		if err := cr.ClearCanary(ctx, name); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return "", fmt.Errorf("clear the canary of %s: %w", name, err)
		}
	}
	return note, nil
}

// trackCanary makes run visible to `gantry canary` while it runs.
func (o *Orchestrator) trackCanary(id int64, run *canaryRun) func() {
	o.mu.Lock()
	if o.canaries == nil {
		o.canaries = map[int64]*canaryRun{}
	}
	o.canaries[id] = run
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.canaries, id)
		o.mu.Unlock()
	}
}

// canaryOf returns the canary running on app's env.
func (o *Orchestrator) canaryOf(ctx context.Context, app, env string) (*canaryRun, error) {
	d, err := o.holder(ctx, app, env)
	if err == nil {
		o.mu.Lock()
		run, ok := o.canaries[d.ID]
		o.mu.Unlock()
		if ok {
			return run, nil
		}
	}
	return nil, gantry.Errorf(gantry.ENOTFOUND, "no canary runs on %s/%s", app, env)
}

// CanaryStatus reports the canary running on app's env.
func (o *Orchestrator) CanaryStatus(ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
	run, err := o.canaryOf(ctx, app, env)
	if err != nil {
		return nil, err
	}
	return run.snapshot(), nil
}

// CanarySteer asks the canary running on app's env to promote (skip its
// remaining steps and switch) or to abort (traffic back on the stable
// slot, the candidate stopped). It returns once the canary took the order.
func (o *Orchestrator) CanarySteer(ctx context.Context, app, env, actor string, promote bool) (*gantry.CanaryReport, error) {
	run, err := o.canaryOf(ctx, app, env)
	if err != nil {
		return nil, err
	}
	select {
	case run.cmd <- canaryCmd{promote: promote, actor: actor}:
	default:
		return nil, gantry.Errorf(gantry.ECONFLICT, "the canary on %s/%s already has an order it has not taken yet", app, env)
	}
	return run.snapshot(), nil
}

// checkCanaryOpts refuses a canary where it cannot run.
func (o *Orchestrator) checkCanaryOpts(op *op) error {
	if op.strategy != gantry.StrategyCanary {
		return nil
	}
	var why []string
	if _, ok := o.slotDriver(op.spec); ok && !op.spec.Runtime.RouterInFront() {
		why = append(why, "the "+op.spec.Runtime.Driver+" runtime routes its own traffic (runtime.traffic: cluster); with runtime.traffic: router Gantry's router carries it and can split it")
	}
	if op.spec.Canary == nil {
		why = append(why, "environment "+op.env+" has no canary steps in the manifest")
	}
	if op.m.Database.AppMigratesIncompatibly() {
		why = append(why, "the app migrates its own schema incompatibly, so the old release could not run beside it")
	}
	if n := httpServices(op.m); n > 1 {
		why = append(why, fmt.Sprintf("the app has %d http services, each with its own route, and a canary splits one route", n))
	}
	if op.pauseAfter != nil || op.only != "" {
		why = append(why, "--pause-after and --only are for blue-green rollouts")
	}
	if _, ok := o.Router.(gantry.CanaryRouter); !ok && len(why) == 0 {
		why = append(why, "the router cannot split traffic")
	}
	if len(why) > 0 {
		return gantry.Errorf(gantry.EINVALID, "strategy canary: %s", strings.Join(why, "; "))
	}
	return nil
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// httpServices counts m's http services: the routes a release serves.
func httpServices(m *gantry.Manifest) int {
	n := 0
	for _, s := range m.Services {
		if s.HTTP {
			n++
		}
	}
	return n
}
