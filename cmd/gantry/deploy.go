package main

import (
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() {
	register(newDeployCmd)
	register(newPromoteCmd)
	register(newRollbackCmd)
}

func newDeployCmd(m *Main) *cobra.Command {
	var req gantry.DeployRequest
	var ref, version, only string
	var pauseAfter int
	cmd := &cobra.Command{
		Use:   "deploy ENV (--release ID | --ref REF) [--strategy bluegreen|restart|maintenance] [--pause-after GROUP] [--only SERVICE]",
		Short: "Deploy a release to an environment (blue-green by default)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (req.Release == "") == (ref == "") {
				return usagef("deploy: give exactly one of --release or --ref")
			}
			var pause *int
			if cmd.Flags().Changed("pause-after") {
				if pauseAfter < 0 {
					return usagef("deploy: --pause-after takes an order group (0 or more)")
				}
				pause = &pauseAfter
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			req.App, req.Env = app, args[0]
			p := m.newProgress()
			defer p.done()
			if ref != "" {
				rel, err := c.BuildRelease(cmd.Context(), gantry.BuildRequest{App: app, Ref: ref, Version: version}, p.event)
				if err != nil {
					return err
				}
				req.Release = rel.ID
			}
			var d *gantry.Deployment
			if pause != nil || only != "" {
				d, err = c.DeployOrdered(cmd.Context(), req, pause, only, p.event)
			} else {
				d, err = c.Deploy(cmd.Context(), req, p.event)
			}
			p.done()
			return m.deploymentOutput(d, err)
		},
	}
	cmd.Flags().StringVar(&req.Release, "release", "", "release id or version to deploy")
	cmd.Flags().StringVar(&ref, "ref", "", "build this git ref (or reuse its release) and deploy it")
	cmd.Flags().StringVar(&version, "version", "", "with --ref: the version to record")
	cmd.Flags().StringVar(&req.Strategy, "strategy", "", "bluegreen, restart, maintenance or canary (default: the environment's; canary needs the environment's canary steps)")
	cmd.Flags().StringVar(&req.BreakGlass, "break-glass", "", "deploy through a freeze window; the reason is recorded")
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "queue behind the environment's lock instead of failing at once")
	cmd.Flags().IntVar(&pauseAfter, "pause-after", 0, "pause once this order group is healthy; go on with gantry continue ENV")
	cmd.Flags().StringVar(&only, "only", "", "redeploy this one service; the others keep the release they run")
	return cmd
}

func newPromoteCmd(m *Main) *cobra.Command {
	var req gantry.PromoteRequest
	var pauseAfter int
	cmd := &cobra.Command{
		Use:   "promote FROM TO [--strategy bluegreen|restart|maintenance] [--pause-after GROUP]",
		Short: "Deploy to TO exactly the release that runs on FROM (same digests, never rebuilt)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("pause-after") {
				if pauseAfter < 0 {
					return usagef("promote: --pause-after takes an order group (0 or more)")
				}
				req.PauseAfter = &pauseAfter
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			p := m.newProgress()
			defer p.done()
			req.App, req.From, req.To = app, args[0], args[1]
			d, err := c.Promote(cmd.Context(), req, p.event)
			p.done()
			return m.deploymentOutput(d, err)
		},
	}
	cmd.Flags().StringVar(&req.Strategy, "strategy", "", "bluegreen, restart or maintenance (default: TO's)")
	cmd.Flags().StringVar(&req.BreakGlass, "break-glass", "", "promote through a freeze window; the reason is recorded")
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "queue behind the environment's lock instead of failing at once")
	cmd.Flags().IntVar(&pauseAfter, "pause-after", 0, "pause once this order group is healthy; go on with gantry continue TO")
	return cmd
}

func newRollbackCmd(m *Main) *cobra.Command {
	var req gantry.RollbackRequest
	cmd := &cobra.Command{
		Use:   "rollback ENV [--to RELEASE] [--force]",
		Short: "Go back to the warm previous release (a router flip), or redeploy an older one",
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
			d, err := c.Rollback(cmd.Context(), req, p.event)
			p.done()
			return m.deploymentOutput(d, err)
		},
	}
	cmd.Flags().StringVar(&req.To, "to", "", "release id or version to go back to (default: the warm standby)")
	cmd.Flags().StringVar(&req.BreakGlass, "break-glass", "", "roll back through a freeze window; the reason is recorded")
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "queue behind the environment's lock instead of failing at once")
	cmd.Flags().BoolVar(&req.Force, "force", false, "when the release predates the database's schema, roll the database back first (restores its snapshot; writes since are lost)")
	cmd.Flags().BoolVar(&req.Force, "restore", false, "the same as --force: restore the snapshot taken before the schema changed, then switch")
	return cmd
}

// deploymentOutput prints a finished deployment and passes its error on,
// so the exit code says how it ended.
func (m *Main) deploymentOutput(d *gantry.Deployment, err error) error {
	if d == nil {
		return err
	}
	if m.JSON {
		if oerr := m.output(d, nil); oerr != nil {
			return oerr
		}
		return err
	}
	w := m.Stdout
	took := d.FinishedAt.Sub(d.CreatedAt).Round(time.Millisecond)
	switch d.State {
	case gantry.DeploymentSucceeded:
		fmt.Fprintf(w, "%s #%d: %s is live on %s (slot %s) in %s\n", d.Kind, d.ID, d.Version, d.Env, d.Slot, took)
	case gantry.DeploymentPaused:
		printPaused(w, d)
	default:
		fmt.Fprintf(w, "%s #%d of %s to %s %s after %s\n", d.Kind, d.ID, d.Version, d.Env, d.State, took)
	}
	return err
}
