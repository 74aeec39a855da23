package deploy

import (
	"context"
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
	// must still record how its step ended.
	if uerr := r.o.Store.UpdateStep(context.WithoutCancel(ctx), r.d.ID, s); uerr != nil && err == nil {
		err = fmt.Errorf("journal step %s: %w", name, uerr)
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
	if uerr := r.o.Store.UpdateDeployment(context.WithoutCancel(ctx), r.d); uerr != nil {
		r.o.logger().Error("record deployment result", "deployment", r.d.ID, "error", uerr)
	}
	r.emit("", r.d.State, r.d.Error)
	return err
}
