package docker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/gantry-dev/gantry"
)

// killGrace bounds the wait after SIGKILL; only a container stuck in the
// kernel or an engine in trouble outlives it.
const killGrace = 15 * time.Second

// signals are the stop signals a manifest may name (manifest.md).
var signals = map[string]bool{
	"SIGTERM": true, "SIGINT": true, "SIGQUIT": true, "SIGHUP": true,
	"SIGUSR1": true, "SIGUSR2": true, "SIGWINCH": true, "SIGKILL": true,
}

// parseSignal accepts "SIGTERM", "term", "TERM"; empty means SIGTERM.
func parseSignal(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return "SIGTERM", nil
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if !signals[s] {
		return "", gantry.Errorf(gantry.EINVALID, "unknown stop signal %q", s)
	}
	return s, nil
}

// Stop sends stop.Signal (default SIGTERM) to the container's main process,
// waits up to stop.Timeout (default 30s) for it to exit, then sends SIGKILL,
// and returns once the container has stopped. The signal is sent by the
// driver rather than by `docker stop`, whose timeout counts whole seconds
// and which older engines cannot give another signal.
//
// The stopped container is kept, so that its logs can still be read; the
// next Start of the same instance name replaces it. If ctx ends first, Stop
// returns its error and the container is left as it is.
func (d *Driver) Stop(ctx context.Context, inst gantry.Instance, stop gantry.StopSpec) error {
	sig, err := parseSignal(stop.Signal)
	if err != nil {
		return err
	}
	timeout := stop.Timeout
	if timeout <= 0 {
		timeout = gantry.DefaultStopTimeout
	}
	c, err := d.container(ctx, inst)
	if notFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stop %s: %w", describe(inst), err)
	}
	if !running(c) {
		return nil
	}
	log := d.logger().With(attrInstance, c.Name, attrContainer, shortID(c.ID))
	// Waiting starts before the signal, so that an exit right after it is
	// not missed.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, waitErr := d.Client.ContainerWait(waitCtx, c.ID, container.WaitConditionNotRunning)
	if err := d.Client.ContainerKill(ctx, c.ID, sig); err != nil {
		if notFound(err) || isNotRunning(err) {
			return nil
		}
		return fmt.Errorf("stop %s: signal: %w", describe(inst), err)
	}
	log.Info("stopping instance", attrSignal, sig, "timeout", timeout)
	done, err := waitExit(ctx, exited, waitErr, timeout)
	if err != nil || done {
		return wrapStop(inst, err)
	}
	log.Warn("instance outlived its stop timeout, killing it", "timeout", timeout)
	if err := d.Client.ContainerKill(ctx, c.ID, "SIGKILL"); err != nil && !notFound(err) && !isNotRunning(err) {
		return fmt.Errorf("stop %s: kill: %w", describe(inst), err)
	}
	done, err = waitExit(ctx, exited, waitErr, killGrace)
	if err != nil {
		return wrapStop(inst, err)
	}
	if !done {
		return fmt.Errorf("stop %s: container %s survived SIGKILL for %s", describe(inst), shortID(c.ID), killGrace)
	}
	return nil
}

func wrapStop(inst gantry.Instance, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("stop %s: %w", describe(inst), err)
}

// waitExit waits for the container wait to report, up to timeout. It
// reports false when the timeout passed first.
func waitExit(ctx context.Context, exited <-chan container.WaitResponse, errs <-chan error, timeout time.Duration) (bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
		return true, nil
	case err := <-errs:
		if notFound(err) {
			return true, nil // removed meanwhile: stopped all the same
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("wait: %w", err)
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Attach checks that the instance's container still runs; a driver value
// needs nothing else to manage it, since the engine keeps the container's
// state. It returns ENOTFOUND when the container is gone or has exited.
func (d *Driver) Attach(ctx context.Context, inst gantry.Instance) error {
	c, err := d.container(ctx, inst)
	if notFound(err) {
		return gantry.Errorf(gantry.ENOTFOUND, "instance %s is gone", describe(inst))
	} else if err != nil {
		return fmt.Errorf("attach %s: %w", describe(inst), err)
	}
	if !running(c) {
		return gantry.Errorf(gantry.ENOTFOUND, "instance %s is no longer running (%s)", describe(inst), exitDetail(c))
	}
	return nil
}

// Inspect reports whether the instance's container runs, has exited (with
// its exit code) or is gone.
func (d *Driver) Inspect(ctx context.Context, inst gantry.Instance) (gantry.InstanceState, error) {
	c, err := d.container(ctx, inst)
	if notFound(err) {
		return gantry.InstanceState{State: gantry.InstanceGone, Detail: "no such container"}, nil
	} else if err != nil {
		return gantry.InstanceState{}, fmt.Errorf("inspect %s: %w", describe(inst), err)
	}
	if running(c) {
		return gantry.InstanceState{State: gantry.InstanceRunning, Detail: c.State.Status}, nil
	}
	return gantry.InstanceState{State: gantry.InstanceExited, ExitCode: c.State.ExitCode, Detail: exitDetail(c)}, nil
}

// container inspects the instance's container and checks that it is the
// instance's: a handle that names a container Gantry did not start, or
// another instance's, is treated as gone rather than acted on.
func (d *Driver) container(ctx context.Context, inst gantry.Instance) (container.InspectResponse, error) {
	if inst.Handle == "" {
		return container.InspectResponse{}, gantry.Errorf(gantry.EINVALID, "instance %s has no container handle", describe(inst))
	}
	c, err := d.Client.ContainerInspect(ctx, inst.Handle)
	if err != nil {
		return c, err
	}
	if c.Config == nil || c.State == nil || c.Config.Labels[LabelApp] == "" ||
		c.Config.Labels[LabelService] != inst.Service || c.Config.Labels[LabelInstance] != strconv.Itoa(inst.Index) {
		return c, errNotOurs{}
	}
	c.Name = strings.TrimPrefix(c.Name, "/")
	return c, nil
}

// errNotOurs is a handle that names a container Gantry did not start for
// this instance. It counts as not found: there is nothing of ours to act on.
type errNotOurs struct{}

func (errNotOurs) Error() string { return "the container is not this instance's" }
func (errNotOurs) NotFound()     {}

func running(c container.InspectResponse) bool {
	return c.State != nil && (c.State.Running || c.State.Restarting || c.State.Paused)
}

func exitDetail(c container.InspectResponse) string {
	switch {
	case c.State == nil:
		return "unknown"
	case c.State.OOMKilled:
		return "killed: out of memory"
	case c.State.Error != "":
		return c.State.Status + ": " + c.State.Error
	case c.State.Status == "created":
		return "created, never started"
	}
	return "exited with code " + strconv.Itoa(c.State.ExitCode)
}

// isNotRunning reports the engine's answer to a signal for a container that
// has just exited.
func isNotRunning(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is not running")
}

func describe(inst gantry.Instance) string {
	return fmt.Sprintf("%s-%d (%s)", inst.Service, inst.Index, shortID(inst.Handle))
}
