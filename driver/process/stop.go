package process

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry"
)

// pollInterval is how often Stop looks whether a process group is gone.
const pollInterval = 25 * time.Millisecond

// killGrace bounds the wait after SIGKILL; only a process stuck in the
// kernel outlives it.
const killGrace = 10 * time.Second

// Stop sends stop.Signal (default SIGTERM) to the instance's process group,
// waits up to stop.Timeout (default 30s) for the whole group to exit, then
// sends SIGKILL, and returns once the group is gone. If ctx ends first, Stop
// returns its error and the instance is left as it is.
func (d *Driver) Stop(ctx context.Context, inst gantry.Instance, stop gantry.StopSpec) error {
	sig, err := parseSignal(stop.Signal)
	if err != nil {
		return err
	}
	timeout := stop.Timeout
	if timeout <= 0 {
		timeout = gantry.DefaultStopTimeout
	}
	h, err := decodeHandle(inst)
	if err != nil {
		return err
	}
	ls, err := leader(h.PID, h.StartTime)
	if err != nil {
		return fmt.Errorf("stop %s: %w", describe(inst, h), err)
	}
	// A reused pid means our leader is gone, and the kernel reuses a pid
	// only once no group bears it: nothing of ours is left to signal. While
	// the leader is gone but not reused, its group may still hold children
	// of a shell command; they are ours.
	if ls == leaderReused {
		d.forget(h)
		return nil
	}
	if err := syscall.Kill(-h.PGID, sig); err == syscall.ESRCH {
		d.reaped(ctx, h)
		d.forget(h)
		return nil
	} else if err != nil {
		return fmt.Errorf("stop %s: signal: %w", describe(inst, h), err)
	}
	d.logger().Info("stopping instance", attrInstance, fmt.Sprintf("%s-%d", inst.Service, inst.Index),
		attrPID, h.PID, attrSignal, signalName(sig), "timeout", timeout)

	gone, err := waitGone(ctx, h.PGID, timeout)
	if err != nil {
		return fmt.Errorf("stop %s: %w", describe(inst, h), err)
	}
	if !gone {
		d.logger().Warn("instance outlived its stop timeout, killing it", attrInstance,
			fmt.Sprintf("%s-%d", inst.Service, inst.Index), attrPID, h.PID, "timeout", timeout)
		if err := syscall.Kill(-h.PGID, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("stop %s: kill: %w", describe(inst, h), err)
		}
		gone, err = waitGone(ctx, h.PGID, killGrace)
		if err != nil {
			return fmt.Errorf("stop %s: %w", describe(inst, h), err)
		}
		if !gone {
			return fmt.Errorf("stop %s: process group %d survived SIGKILL for %s", describe(inst, h), h.PGID, killGrace)
		}
	}
	d.reaped(ctx, h)
	d.forget(h)
	return nil
}

// reaped waits for this value's reaper, if the instance is its child, so
// that once Stop returns no zombie is left behind.
func (d *Driver) reaped(ctx context.Context, h handle) {
	if c := d.child(h); c != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
}

// waitGone polls until no live process is left in group pgid, and reports
// false when timeout passes first.
func waitGone(ctx context.Context, pgid int, timeout time.Duration) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		alive, err := groupAlive(pgid)
		if err != nil {
			return false, err
		}
		if !alive {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			alive, err := groupAlive(pgid)
			return !alive, err
		case <-tick.C:
		}
	}
}

// Attach checks that the handle's process still runs (same pid and start
// time) and resumes the rotation of its log. It starts nothing.
func (d *Driver) Attach(ctx context.Context, inst gantry.Instance) error {
	h, err := decodeHandle(inst)
	if err != nil {
		return err
	}
	ls, err := leader(h.PID, h.StartTime)
	if err != nil {
		return fmt.Errorf("attach %s: %w", describe(inst, h), err)
	}
	if ls != leaderRunning {
		return gantry.Errorf(gantry.ENOTFOUND, "%s is no longer running", describe(inst, h))
	}
	var done <-chan struct{}
	if c := d.child(h); c != nil {
		done = c.done
	}
	d.watch(h, done)
	return nil
}

// Inspect reports running, exited (with the exit code when this driver, or
// the one before a restart, reaped the process) or gone. It also rotates the
// instance's log when it is past LogMaxBytes.
func (d *Driver) Inspect(ctx context.Context, inst gantry.Instance) (gantry.InstanceState, error) {
	h, err := decodeHandle(inst)
	if err != nil {
		return gantry.InstanceState{}, err
	}
	if err := d.rotate(h.Log); err != nil {
		d.logger().Warn("rotate instance log", attrInstance, fmt.Sprintf("%s-%d", inst.Service, inst.Index), attrError, err)
	}
	c := d.child(h)
	if c != nil {
		select {
		case <-c.done:
			return c.rec.state(), nil
		default:
		}
	}
	ls, err := leader(h.PID, h.StartTime)
	if err != nil {
		return gantry.InstanceState{}, fmt.Errorf("inspect %s: %w", describe(inst, h), err)
	}
	switch {
	case ls == leaderRunning:
		return gantry.InstanceState{State: gantry.InstanceRunning}, nil
	case c != nil:
		// Our reaper has collected it or is about to (the process can be
		// gone from /proc before the reaper records its status): wait for
		// the reaper and report the status it saw.
		select {
		case <-c.done:
			return c.rec.state(), nil
		case <-ctx.Done():
			return gantry.InstanceState{}, ctx.Err()
		}
	}
	if rec, ok := d.readExit(h); ok {
		return rec.state(), nil
	}
	if ls == leaderZombie {
		return gantry.InstanceState{State: gantry.InstanceExited, Detail: "exited; exit code unknown"}, nil
	}
	return gantry.InstanceState{State: gantry.InstanceGone, Detail: fmt.Sprintf("no process %d started at tick %d", h.PID, h.StartTime)}, nil
}
