package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// run is one deployment in progress: its record and its journal.
type run struct {
	o        *Orchestrator
	d        *gantry.Deployment
	progress gantry.Progress
	start    time.Time
	// softFail marks a step that failed without failing the operation (an
	// after_* hook that kept failing); the step's detail says so.
	softFail bool
	// recorded are the operation's first steps, journaled done with its
	// deployment's record (see start): steps that only record, which
	// recordPolicy reports without writing them again.
	recorded []gantry.Step
	// unsettled marks a run whose records may not say what it did (a step
	// acted but its result could not be written, or its outcome could not
	// be): it keeps its lock until the record follows what serves (settle).
	unsettled bool
}

// unrecordedError is a step whose action succeeded but whose result the
// journal could not record (the disk was full). It is not a failure of the
// action: after a switch the traffic has moved, and undoing the step as if
// it had failed would stop what now serves (invariant 12).
type unrecordedError struct {
	step string
	err  error
}

func (e *unrecordedError) Error() string { return fmt.Sprintf("journal step %s: %v", e.step, e.err) }
func (e *unrecordedError) Unwrap() error { return e.err }

// actedUnrecorded reports whether err says a step acted but went unrecorded.
func actedUnrecorded(err error) bool {
	var u *unrecordedError
	return errors.As(err, &u)
}

// DefaultRecordRetry bounds how long a record that the store refuses is
// written again before the engine gives up on it (Orchestrator.RecordRetry).
const DefaultRecordRetry = 5 * time.Second

// retryRecord runs write again, backing off, for at most RecordRetry while
// the disk refuses it (space may come back: a log rotated, a file
// removed); any other failure ends it at once, as before.
func (o *Orchestrator) retryRecord(ctx context.Context, write func() error) error {
	limit := o.RecordRetry
	if limit <= 0 {
		limit = DefaultRecordRetry
	}
	deadline := time.Now().Add(limit)
	wait := 20 * time.Millisecond
	for {
		err := write()
		if !gantry.IsDiskFull(err) || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// reached records, as the deployment's typed resume state, that an order
// group is up on the candidate.
func (r *run) reached(ctx context.Context, order int) error {
	r.d.GroupDone = &order
	return r.o.Store.UpdateDeployment(context.WithoutCancel(ctx), r.d)
}

// step journals a step before running fn, then records its result. The
// journal entry is durable before fn acts, so a crash inside fn is visible
// to recovery.
func (r *run) step(ctx context.Context, name, detail string, fn func() (string, error)) error {
	s := &gantry.Step{Name: name, State: gantry.StepStarted, Detail: detail, StartedAt: r.o.now()}
	if err := r.o.Store.AppendStep(ctx, r.d.ID, s); err != nil {
		return fmt.Errorf("journal step %s: %w", name, err)
	}
	r.emit(name, gantry.StepStarted, detail)
	if r.o.OnStep != nil {
		r.o.OnStep(r.d, *s)
	}
	result, err := fn()
	s.EndedAt = r.o.now()
	s.State = gantry.StepDone
	if result != "" {
		s.Detail = result
	}
	if r.softFail {
		s.State, r.softFail = gantry.StepFailed, false
	}
	if err != nil {
		s.State = gantry.StepFailed
		s.Detail = gantry.ErrorMessage(err)
		if gantry.ErrorCode(err) == gantry.EINTERNAL {
			s.Detail = err.Error()
		}
	}
	// The result is written with a fresh context: a cancelled deployment
	// must still record how its step ended. A result the store refuses is
	// tried again for a while; if it still cannot be written, an action
	// that succeeded is reported as such, unrecorded, never as failed.
	wctx := context.WithoutCancel(ctx)
	if uerr := r.o.retryRecord(wctx, func() error { return r.o.Store.UpdateStep(wctx, r.d.ID, s) }); uerr != nil {
		r.o.logger().Error("journal step result", "deployment", r.d.ID, "step", name, "state", s.State, "error", uerr)
		r.unsettled = true
		if err == nil {
			err = &unrecordedError{step: name, err: uerr}
		}
	}
	r.emit(name, s.State, s.Detail)
	if r.o.OnStep != nil {
		r.o.OnStep(r.d, *s)
	}
	r.d.Steps = append(r.d.Steps, *s)
	return err
}

func (r *run) emit(step, state, msg string) {
	if r.progress == nil {
		return
	}
	r.progress(gantry.Event{DeploymentID: r.d.ID, Step: step, State: state, Message: msg, Elapsed: time.Since(r.start)})
}

// finish records the deployment's outcome.
func (r *run) finish(ctx context.Context, err error) error {
	r.d.FinishedAt = r.o.now()
	r.d.State = gantry.DeploymentSucceeded
	if err != nil {
		r.d.State = gantry.DeploymentFailed
		r.d.Error = gantry.ErrorMessage(err)
		if gantry.ErrorCode(err) == gantry.EINTERNAL {
			r.d.Error = err.Error()
		}
	}
	wctx := context.WithoutCancel(ctx)
	if uerr := r.o.retryRecord(wctx, func() error { return r.o.Store.UpdateDeployment(wctx, r.d) }); uerr != nil {
		r.o.logger().Error("record deployment result", "deployment", r.d.ID, "error", uerr)
		r.unsettled = true
	}
	if gantry.IsDiskFull(err) || actedUnrecorded(err) {
		r.unsettled = true
	}
	r.emit("", r.d.State, r.d.Error)
	return err
}
