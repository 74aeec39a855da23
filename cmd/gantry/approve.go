package main

import (
	"fmt"
	"io"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newApproveCmd) }

func newApproveCmd(m *Main) *cobra.Command {
	var req gantry.ApproveRequest
	cmd := &cobra.Command{
		Use:   "approve ENV --release R [--comment C]",
		Short: "Approve a release for an environment (bound to its digests and configuration)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Release == "" {
				return usagef("approve: --release is required")
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			req.App, req.Env = app, args[0]
			a, err := c.Approve(cmd.Context(), req)
			if err != nil {
				return err
			}
			return m.output(a, func(w io.Writer) {
				fmt.Fprintf(w, "%s approved %s for %s (fingerprint %.19s)\n", a.Approver, a.ReleaseID, a.Env, a.Fingerprint)
			})
		},
	}
	cmd.Flags().StringVar(&req.Release, "release", "", "release id or version to approve")
	cmd.Flags().StringVar(&req.Comment, "comment", "", "why it is approved (recorded)")
	return cmd
}
