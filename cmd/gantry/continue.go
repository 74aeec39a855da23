package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newContinueCmd) }

func newContinueCmd(m *Main) *cobra.Command {
	var req gantry.ContinueRequest
	cmd := &cobra.Command{
		Use:   "continue ENV [--abort] [--break-glass REASON]",
		Short: "Resume a deployment paused by deploy --pause-after, from its next order group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			p := m.newProgress()
			defer p.done()
			req.App, req.Env = app, args[0]
			d, err := c.Continue(cmd.Context(), req, p.event)
			p.done()
			return m.deploymentOutput(d, err)
		},
	}
	cmd.Flags().BoolVar(&req.Abort, "abort", false, "stop the paused candidate's groups (in reverse order) instead of going on")
	cmd.Flags().StringVar(&req.BreakGlass, "break-glass", "", "go on through a freeze window; the reason is recorded")
	return cmd
}

// printPaused says where a paused deployment stopped, what to check, and
// how to go on, from its journal's pause-after step.
func printPaused(w io.Writer, d *gantry.Deployment) {
	fmt.Fprintf(w, "%s #%d of %s to %s is paused; it holds the lock of %s\n", d.Kind, d.ID, d.Version, d.Env, d.Env)
	for i := len(d.Steps) - 1; i >= 0; i-- {
		if d.Steps[i].Name != "pause-after" {
			continue
		}
		for _, part := range strings.Split(d.Steps[i].Detail, "; ") {
			if !strings.HasPrefix(part, "go on with") {
				fmt.Fprintf(w, "  %s\n", part)
			}
		}
		break
	}
	fmt.Fprintf(w, "go on:  gantry continue %s\nabort:  gantry continue %s --abort\n", d.Env, d.Env)
}
