package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newImagesCmd) }

func newImagesCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "Manage the container images of releases"}
	var keep int
	prune := &cobra.Command{
		Use:   "prune [--keep N]",
		Short: "Remove images no environment needs: every active and standby slot's, and each environment's last N releases', stay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := m.client().PruneImages(cmd.Context(), keep)
			if err != nil {
				return err
			}
			return m.output(map[string]any{"removed": removed}, func(w io.Writer) {
				for _, r := range removed {
					fmt.Fprintln(w, "removed", r)
				}
				fmt.Fprintf(w, "%d images removed\n", len(removed))
			})
		},
	}
	prune.Flags().IntVar(&keep, "keep", 5, "releases per environment whose images stay")
	cmd.AddCommand(prune)
	return cmd
}
