package hook

import (
	"context"
	"fmt"
	"strings"

	gantry "github.com/gantry-dev/gantry"
)

// Phases, as the manifest's hooks key names them.
const (
	BeforeBuild    = "before_build"
	AfterBuild     = "after_build"
	BeforeDeploy   = "before_deploy"
	AfterDeploy    = "after_deploy"
	BeforeSwitch   = "before_switch"
	AfterSwitch    = "after_switch"
	BeforePromote  = "before_promote"
	AfterPromote   = "after_promote"
	BeforeRollback = "before_rollback"
	AfterRollback  = "after_rollback"
)

// IsBefore reports whether a phase's hooks gate the operation.
func IsBefore(phase string) bool { return strings.HasPrefix(phase, "before_") }

// Phase runs the hooks that hooks (a manifest's Hooks) declares for
// hc.Phase: Before's rules for a before_* phase, After's for an after_*
// one, whose error is always nil. A phase without hooks does nothing.
func (r *Runner) Phase(ctx context.Context, hooks map[string][]gantry.Hook, hc Context) ([]Result, error) {
	hs := hooks[hc.Phase]
	if len(hs) == 0 {
		return nil, nil
	}
	if IsBefore(hc.Phase) {
		return r.Before(ctx, hs, hc)
	}
	return r.After(ctx, hs, hc), nil
}

// Summarize is results in one line for a journal step or a log:
// "2 hooks ok" or "1 of 2 hooks failed: after_switch hook 1 (webhook) https://cdn.example/… failed after 5 attempt(s): HTTP 502 Bad Gateway".
func Summarize(results []Result) string {
	failed := Failed(results)
	noun := "hook"
	if len(results) > 0 && results[0].Phase == "" {
		noun = "notification"
	}
	if len(results) != 1 {
		noun += "s"
	}
	if len(failed) == 0 {
		return fmt.Sprintf("%d %s ok", len(results), noun)
	}
	msgs := make([]string, len(failed))
	for i, f := range failed {
		msgs[i] = gantry.ErrorMessage(f.Err())
	}
	return fmt.Sprintf("%d of %d %s failed: %s", len(failed), len(results), noun, strings.Join(msgs, "; "))
}
