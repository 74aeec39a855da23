package hook

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	gantry "github.com/gantry-dev/gantry"
)

// command runs one attempt of a command hook: `sh -c` in hc.Dir, with only
// the documented environment, bounded in time and in the output it keeps.
func (r *Runner) command(ctx context.Context, script string, hc Context, m gantry.Masker) attempt {
	timeout := r.CommandTimeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	out := newTail(r.outputLimit())
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = hc.Dir
	cmd.Env = commandEnv(hc)
	cmd.Stdout, cmd.Stderr = out, out
	// The shell's children (a test suite, curl) must die with it, or they
	// would keep the output pipe open and the hook would outlive its timeout.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
	cmd.WaitDelay = 2 * time.Second

	err := cmd.Run()
	a := attempt{exitCode: -1, output: m.Mask(out.String())}
	if cmd.ProcessState != nil {
		a.exitCode = cmd.ProcessState.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case parent.Err() != nil:
		// The operation was canceled: no point in trying again.
		a.err = parent.Err().Error()
	case ctx.Err() != nil:
		a.err = fmt.Sprintf("timed out after %s", timeout)
		a.retryable = true
	case err == nil:
		a.ok = true
	case errors.As(err, &exitErr):
		a.err = fmt.Sprintf("exit status %d", exitErr.ExitCode())
		if a.exitCode < 0 {
			a.err = exitErr.String()
		}
		a.retryable = true
	default:
		// The shell did not start, or the output pipe outlived WaitDelay.
		a.err = m.Mask(err.Error())
		a.retryable = true
	}
	return a
}

// commandEnv is the environment a command gets: the fixed base of
// gantry.CommandEnv (PATH, HOME as hc.Home or else hc.Dir, LANG), the
// environment's vars and secrets, then the GANTRY_* variables, which nothing
// may override. Nothing of the server's own environment leaks into a hook:
// not its PATH, not its HOME, not its credentials.
func commandEnv(hc Context) []string {
	home := hc.Home
	if home == "" {
		home = hc.Dir
	}
	env := gantry.CommandEnv(home)
	var extra []string
	for _, vs := range []map[string]string{hc.Vars, hc.Secrets} {
		for k, v := range vs {
			if !strings.HasPrefix(k, "GANTRY_") && !reservedName(k) {
				extra = append(extra, k+"="+v)
			}
		}
	}
	slices.Sort(extra)
	env = append(env, extra...)
	return append(env, hc.env()...)
}

// reservedName reports whether an environment's variable would replace one
// of the base variables: an app's vars may not move PATH back to the
// server's directories or HOME out of the throwaway directory.
func reservedName(k string) bool {
	switch k {
	case "PATH", "HOME", "LANG":
		return true
	}
	return false
}

// tail is an io.Writer that keeps the last limit bytes written to it, and
// counts what it dropped. It needs no lock: when Stdout and Stderr are the
// same writer, exec copies both through one pipe in one goroutine.
type tail struct {
	limit   int
	buf     []byte
	dropped int64
}

func newTail(limit int) *tail { return &tail{limit: limit} }

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.limit {
		t.dropped += int64(len(t.buf) + len(p) - t.limit)
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	// Trim in batches so that a chatty command costs amortised O(1) a byte.
	if len(t.buf) > 2*t.limit {
		cut := len(t.buf) - t.limit
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return n, nil
}

// String returns the kept tail, at most limit bytes, with a note of how much
// came before it.
func (t *tail) String() string {
	b := t.buf
	dropped := t.dropped
	if len(b) > t.limit {
		dropped += int64(len(b) - t.limit)
		b = b[len(b)-t.limit:]
	}
	if dropped == 0 {
		return string(b)
	}
	return fmt.Sprintf("[%d earlier bytes cut]\n%s", dropped, strings.ToValidUTF8(string(b), "\uFFFD"))
}
