package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newAppCmd) }

func newAppCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Register and list apps"}
	var repo string
	add := &cobra.Command{
		Use:   "add NAME --repo PATH_OR_URL",
		Short: "Register an app: a git repository with a gantry.yml at its root",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if repo == "" {
				return usagef("app add: --repo is required")
			}
			if err := gantry.ValidName("app", args[0]); err != nil {
				return err
			}
			// A local path is made absolute: the server may run elsewhere.
			if !strings.Contains(repo, "://") && !strings.HasPrefix(repo, "git@") {
				if abs, err := filepath.Abs(repo); err == nil {
					repo = abs
				}
			}
			app, err := m.client().CreateApp(cmd.Context(), args[0], repo)
			if err != nil {
				return err
			}
			return m.output(app, func(w io.Writer) { fmt.Fprintf(w, "app %s added (%s)\n", app.Name, app.Repo) })
		},
	}
	add.Flags().StringVar(&repo, "repo", "", "path or URL of the app's git repository")
	list := &cobra.Command{
		Use:   "list",
		Short: "List apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := m.client().ListApps(cmd.Context())
			if err != nil {
				return err
			}
			return m.output(apps, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "APP\tREPOSITORY\tADDED")
				for _, a := range apps {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Repo, a.CreatedAt.Format("2006-01-02 15:04"))
				}
				tw.Flush()
			})
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}
