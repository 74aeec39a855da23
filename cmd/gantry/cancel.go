package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() {
	register(newCancelCmd)
}

// newCancelCmd is `gantry cancel ENV`: the way to free an environment that
// a running deployment holds, since `unlock` never takes its lock away.
func newCancelCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ENV",
		Short: "Cancel the deployment that holds an environment (before its switch its candidate is put back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			d, err := c.Cancel(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			return m.output(d, func(w io.Writer) {
				fmt.Fprintf(w, "%s #%d of %s on %s: %s", d.Kind, d.ID, d.Version, d.Env, d.State)
				if d.Error != "" {
					fmt.Fprintf(w, " (%s)", d.Error)
				}
				fmt.Fprintln(w)
			})
		},
	}
}
