package main

import (
	"fmt"
	"io"
	"os"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newEnvCmd) }

func newEnvCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Clone, rename and delete environments"}
	var clone gantry.CloneRequest
	var postCopy string
	cloneCmd := &cobra.Command{
		Use:   "clone SRC DST [--with-data] [--post-copy SCRIPT]",
		Short: "Create DST with SRC's settings, variables, secret references and release (hosts follow the new name)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := gantry.ValidName("environment", args[1]); err != nil {
				return err
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			clone.App, clone.Src, clone.Dst = app, args[0], args[1]
			if postCopy != "" {
				b, err := os.ReadFile(postCopy)
				if err != nil {
					return usagef("env clone --post-copy: %v", err)
				}
				clone.PostCopy = string(b)
			}
			p := m.newProgress()
			defer p.done()
			d, err := c.Clone(cmd.Context(), clone, p.event)
			p.done()
			return m.deploymentOutput(d, err)
		},
	}
	cloneCmd.Flags().BoolVar(&clone.WithData, "with-data", false, "also copy SRC's database")
	cloneCmd.Flags().StringVar(&clone.BreakGlass, "break-glass", "", "clone through a freeze window of SRC; the reason is recorded")
	cloneCmd.Flags().StringVar(&postCopy, "post-copy", "", "SQL file run in the copied database (anonymise, neutralise e-mail and webhooks)")

	var displace, renameBreakGlass string
	renameCmd := &cobra.Command{
		Use:   "rename OLD NEW [--displace-to NAME]",
		Short: "Rename an environment with its history; --displace-to first renames an existing NEW out of the way",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			names := []string{args[1]}
			if displace != "" {
				names = append(names, displace)
			}
			for _, name := range names {
				if err := gantry.ValidName("environment", name); err != nil {
					return err
				}
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			p := m.newProgress()
			defer p.done()
			d, err := c.Rename(cmd.Context(), gantry.RenameRequest{App: app, Old: args[0], New: args[1], DisplaceTo: displace, BreakGlass: renameBreakGlass}, p.event)
			p.done()
			if d == nil {
				return err
			}
			if m.JSON {
				if oerr := m.output(d, nil); oerr != nil {
					return oerr
				}
				return err
			}
			if err == nil {
				if displace != "" {
					fmt.Fprintf(m.Stdout, "renamed %s → %s and %s → %s (#%d)\n", args[1], displace, args[0], args[1], d.ID)
				} else {
					fmt.Fprintf(m.Stdout, "renamed %s → %s (#%d)\n", args[0], args[1], d.ID)
				}
			}
			return err
		},
	}
	renameCmd.Flags().StringVar(&displace, "displace-to", "", "when NEW exists, rename it to this name first")
	renameCmd.Flags().StringVar(&renameBreakGlass, "break-glass", "", "rename through a freeze window; the reason is recorded")

	var force, purge, keepData bool
	deleteCmd := &cobra.Command{
		Use:   "delete NAME [--force] [--purge] [--keep-data]",
		Short: "Delete an environment, keeping its history (refused while it takes traffic, unless --force)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			// Whether the delete drops a database Gantry created for it
			// (a clone's copy, a preview's), to say so; kept files are
			// found by the environment's data id, which goes with it: say
			// it while it is known.
			created, dataID := false, ""
			if st, err := c.Environment(cmd.Context(), app, args[0]); err == nil && st.Environment != nil {
				e := st.Environment
				created = e.DatabaseCopy != nil && e.DatabaseCopy.Created || e.Preview != nil && e.Preview.Database
				if !purge {
					dataID = st.DataID
				}
			}
			if err := c.DeleteEnvironment(cmd.Context(), gantry.DeleteEnvironmentRequest{App: app, Env: args[0], Force: force, Purge: purge, KeepData: keepData}); err != nil {
				return err
			}
			kept := "its history and its persistent directories are kept"
			if dataID != "" {
				kept += fmt.Sprintf(" (data id %s: the server's %s; remove that directory to free them)", dataID, gantry.PersistDir(gantry.PersistRoot("<data>"), dataID, ""))
			}
			if purge {
				kept = "its history is kept, its persistent directories are removed"
			}
			out := map[string]string{"env": args[0], "status": "deleted"}
			switch {
			case created && keepData:
				kept += "; the database Gantry created for it is kept"
				out["database"] = "kept"
			case created:
				kept += "; the database Gantry created for it is dropped"
				out["database"] = "dropped"
			}
			if dataID != "" {
				out["data_id"] = dataID
			}
			return m.output(out, func(w io.Writer) { fmt.Fprintf(w, "%s deleted; %s\n", args[0], kept) })
		},
	}
	deleteCmd.Flags().BoolVar(&force, "force", false, "stop the environment's instances and delete it even while it takes traffic")
	deleteCmd.Flags().BoolVar(&purge, "purge", false, "also remove the environment's persistent directories (services.<service>.persist), which are kept otherwise")
	deleteCmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the database Gantry created for the environment (by clone --with-data, or for a preview), which is dropped otherwise")
	cmd.AddCommand(cloneCmd, renameCmd, deleteCmd)
	return cmd
}
