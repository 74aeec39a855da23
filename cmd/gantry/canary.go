package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() {
	register(newCanaryCmd)
}

// newCanaryCmd is `gantry canary status|promote|abort ENV`: the canary that
// a deployment with strategy canary runs on ENV, read and steered.
func newCanaryCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Show, promote or abort the canary running on an environment",
	}
	verb := func(use, short string, run func(c *api.Client, ctx context.Context, app, env string) (*gantry.CanaryReport, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ENV",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c := m.client()
				app, err := m.appName(cmd.Context(), c)
				if err != nil {
					return err
				}
				rep, err := run(c, cmd.Context(), app, args[0])
				if err != nil {
					return err
				}
				return m.output(rep, func(w io.Writer) { writeCanary(w, use, rep) })
			},
		}
	}
	cmd.AddCommand(
		verb("status", "Show the canary's steps, verdicts and live figures", (*api.Client).CanaryStatus),
		verb("promote", "Skip the remaining steps: switch all traffic to the candidate now", func(c *api.Client, ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
			return c.CanarySteer(ctx, app, env, true)
		}),
		verb("abort", "Put all traffic back on the stable release and stop the candidate", func(c *api.Client, ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
			return c.CanarySteer(ctx, app, env, false)
		}),
	)
	return cmd
}

func writeCanary(w io.Writer, verb string, rep *gantry.CanaryReport) {
	switch verb {
	case "promote":
		fmt.Fprintf(w, "canary of deployment #%d on %s: promote asked; %s takes all traffic at the switch\n", rep.DeploymentID, rep.Env, rep.Candidate)
		return
	case "abort":
		fmt.Fprintf(w, "canary of deployment #%d on %s: abort asked; all traffic goes back to %s\n", rep.DeploymentID, rep.Env, rep.Stable)
		return
	}
	fmt.Fprintf(w, "canary of deployment #%d on %s: %s (stable) → %s (candidate)\n", rep.DeploymentID, rep.Env, rep.Stable, rep.Candidate)
	var steps []string
	for i, s := range rep.Steps {
		mark := " "
		if i+1 == rep.Step {
			mark = "*"
		}
		steps = append(steps, fmt.Sprintf("%s%d%%", mark, s.Weight))
	}
	fmt.Fprintf(w, "steps: %s → 100%%  (step %d of %d, weight %d%%)\n", strings.Join(steps, " → "), rep.Step, len(rep.Steps), rep.Weight)
	for _, v := range rep.Verdicts {
		fmt.Fprintf(w, "  step %d at %d%%: %s — %s\n", v.Step, v.Weight, v.Verdict, v.Reason)
	}
	if v := rep.Live; v != nil {
		fmt.Fprintf(w, "  live: %s\n", sideLine("stable", v.Stable))
		fmt.Fprintf(w, "  live: %s\n", sideLine("candidate", v.Candidate))
		if v.Candidate.Targeted > 0 {
			fmt.Fprintf(w, "  live: %d requests sent to the candidate by the match rule (not judged)\n", v.Candidate.Targeted)
		}
	}
}

func sideLine(name string, f gantry.SlotFigures) string {
	rate := 0.0
	if f.Requests > 0 {
		rate = 100 * float64(f.Errors5xx) / float64(f.Requests)
	}
	return fmt.Sprintf("%-9s %6d requests, %5.2f%% errors, p50 %s, p99 %s", name, f.Requests, rate, f.P50.Round(100*time.Microsecond), f.P99.Round(100*time.Microsecond))
}
