package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newAppCmd) }

func newAppCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Register and list apps"}
	var repo, poll string
	var pollEnvs []string
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
			if poll == "" && len(pollEnvs) > 0 {
				return usagef("app add: --poll-env needs --poll")
			}
			c := m.client()
			app, err := c.CreateApp(cmd.Context(), args[0], repo)
			if err != nil {
				return err
			}
			if poll == "" {
				return m.output(app, func(w io.Writer) { fmt.Fprintf(w, "app %s added (%s)\n", app.Name, app.Repo) })
			}
			h, err := c.AddHook(cmd.Context(), app.Name, api.AddHookRequest{Forge: gantry.ForgePoll, Role: gantry.RoleDeployer, Envs: pollEnvs, Poll: poll})
			if err != nil {
				return fmt.Errorf("app %s added, but not its poller: %w", app.Name, err)
			}
			out := struct {
				*gantry.App
				Poll *gantry.AddedHook `json:"poll"`
			}{app, h}
			return m.output(out, func(w io.Writer) {
				fmt.Fprintf(w, "app %s added (%s); its branches are polled every %s as token %s\n", app.Name, app.Repo, h.Poll, h.Token)
			})
		},
	}
	add.Flags().StringVar(&repo, "repo", "", "path or URL of the app's git repository")
	add.Flags().StringVar(&poll, "poll", "", "poll the repository's branches this often (e.g. 1m) where webhooks cannot reach the server; a moved branch acts as a push (see the manifest's triggers)")
	add.Flags().StringArrayVar(&pollEnvs, "poll-env", nil, "limit the poller's token (a deployer) to this environment (repeatable; default all)")
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
