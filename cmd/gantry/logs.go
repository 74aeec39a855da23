package main

import (
	"github.com/spf13/cobra"
)

func init() { register(newLogsCmd) }

func newLogsCmd(m *Main) *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs ENV [SERVICE] [-f]",
		Short: "Show the output of an environment's active instances",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			service := ""
			if len(args) == 2 {
				service = args[1]
			}
			return c.Logs(cmd.Context(), app, args[0], service, tail, follow, m.Stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&tail, "tail", "n", 100, "how many recent lines to show per instance (0: all)")
	return cmd
}
