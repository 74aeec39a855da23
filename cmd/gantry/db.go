package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/dbchange"
)

func init() { register(newDBCmd) }

// dbFlags bind the db verbs to a database. Every verb that acts on an
// environment the server manages (status, contract, rollback, snapshots,
// snapshot, restore) goes through the server, which holds the
// environment's DATABASE_URL secret and keeps its snapshots. Given a URL
// (--url or $GANTRY_DB_URL; a secret, never printed), a verb works on that
// database directly instead: direct mode, for a database the server does
// not manage, and for plan and copy. Direct mode keeps its snapshots where
// the server would (gantry.SnapshotDir under --data), so both see the same.
type dbFlags struct {
	url, engine, snapshots, data string
	keep, jobs                   int
}

func (f *dbFlags) binding(m *Main, env string) (gantry.DatabaseBinding, error) {
	u := f.url
	if u == "" {
		u = m.Getenv("GANTRY_DB_URL")
	}
	if u == "" {
		return gantry.DatabaseBinding{}, usagef("db: the database URL is required (--url or $GANTRY_DB_URL)")
	}
	app := m.localApp()
	dir := f.snapshots
	if dir == "" {
		if app == "" {
			return gantry.DatabaseBinding{}, usagef("db: name the app with --app (or run in its directory): direct mode keeps snapshots in DATA/snapshots/APP/%s, as the server does", env)
		}
		dir = f.snapshotDir(m, app, env)
	}
	return gantry.DatabaseBinding{App: app, Env: env, Engine: f.engine, URL: u, SnapshotDir: dir, KeepSnapshots: f.keep}, nil
}

// snapshotDir is where direct mode keeps an environment's snapshots: the
// server's own layout under the data directory.
func (f *dbFlags) snapshotDir(m *Main, app, env string) string {
	return gantry.SnapshotDir(gantry.SnapshotRoot(f.dataDir(m)), app, env)
}

// dataDir is the server's data directory as direct mode assumes it: --data,
// else $GANTRY_DATA, else the default of `gantry server --data`.
func (f *dbFlags) dataDir(m *Main) string {
	if f.data != "" {
		return f.data
	}
	if d := m.Getenv("GANTRY_DATA"); d != "" {
		return d
	}
	return defaultDataDir
}

// direct says whether the verb talks to the database itself.
func (f *dbFlags) direct(m *Main) bool { return f.url != "" || m.Getenv("GANTRY_DB_URL") != "" }

func (f *dbFlags) changer() *dbchange.Changer {
	return &dbchange.Changer{Jobs: f.jobs}
}

// serverApp returns a client of the server and the app a verb acts on.
func (m *Main) serverApp(ctx context.Context) (*api.Client, string, error) {
	c := m.client()
	app, err := m.appName(ctx, c)
	return c, app, err
}

func newDBCmd(m *Main) *cobra.Command {
	f := &dbFlags{}
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Database changes: status, contract, rollback, snapshots, restore, copy",
		Long: `Database changes of an environment. Through the server (the default), which
holds the environment's DATABASE_URL secret and its snapshots. With --url (or
$GANTRY_DB_URL), on that database directly: for a database the server does not
manage, and for plan and copy.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "direct mode: the database URL of a database the server does not manage (default $GANTRY_DB_URL)")
	pf.StringVar(&f.engine, "engine", gantry.MigrationEnginePgroll, "direct mode: migrations engine, pgroll or sql")
	pf.StringVar(&f.data, "data", "", "direct mode: the data directory whose snapshots/APP/ENV holds the snapshots (default $GANTRY_DATA, else "+defaultDataDir+", as gantry server)")
	pf.StringVar(&f.snapshots, "snapshots", "", "direct mode: snapshot directory (default DATA/snapshots/APP/ENV)")
	pf.IntVar(&f.keep, "keep", dbchange.DefaultKeepSnapshots, "direct mode: snapshots to keep")
	pf.IntVar(&f.jobs, "jobs", 2, "direct mode: parallel jobs of pg_dump and pg_restore")
	cmd.AddCommand(newDBStatusCmd(m, f), newDBPlanCmd(m, f), newDBContractCmd(m, f), newDBRollbackCmd(m, f),
		newDBSnapshotsCmd(m, f), newDBSnapshotCmd(m, f), newDBRestoreCmd(m, f), newDBCopyCmd(m, f))
	return cmd
}

func newDBStatusCmd(m *Main, f *dbFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status ENV",
		Short: "Show the migration ledger and the migration in flight",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st *gantry.DatabaseStatus
			if f.direct(m) {
				b, err := f.binding(m, args[0])
				if err != nil {
					return err
				}
				if st, err = f.changer().Status(cmd.Context(), b); err != nil {
					return err
				}
			} else {
				c, app, err := m.serverApp(cmd.Context())
				if err != nil {
					return err
				}
				if st, err = c.DatabaseStatus(cmd.Context(), app, args[0]); err != nil {
					return err
				}
			}
			return m.output(st, func(w io.Writer) {
				fmt.Fprintf(w, "engine %s, schema version %s", st.Engine, orDash(st.SchemaVersion))
				if st.Active != "" {
					fmt.Fprintf(w, ", active migration %s (release %s): contract due", st.Active, orDash(st.ActiveRelease))
				}
				fmt.Fprintln(w)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "AT\tPHASE\tMIGRATION\tRELEASE\tSNAPSHOT\tNOTE")
				for _, r := range st.Ledger {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.At.Local().Format(time.DateTime), r.Phase, orDash(r.Migration), orDash(r.ReleaseID), orDash(r.Snapshot), r.Note)
				}
				tw.Flush()
			})
		},
	}
}

func newDBPlanCmd(m *Main, f *dbFlags) *cobra.Command {
	var dir string
	var live bool
	cmd := &cobra.Command{
		Use:   "plan ENV --migrations DIR [--live]",
		Short: "Say what deploying the migrations in DIR would do to the environment's database",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("db plan: --migrations is required")
			}
			b, err := f.binding(m, args[0])
			if err != nil {
				return err
			}
			p, err := f.changer().Plan(cmd.Context(), b, gantry.PlanRequest{Release: &gantry.Release{}, Migrations: os.DirFS(dir), Live: live})
			if err != nil {
				return err
			}
			return m.output(p, func(w io.Writer) {
				fmt.Fprintf(w, "%s", p.Action)
				if len(p.Pending) > 0 {
					fmt.Fprintf(w, " %s", strings.Join(p.Pending, ", "))
				}
				fmt.Fprintf(w, " (schema %s)\n", p.Schema)
				if p.Reason != "" {
					fmt.Fprintln(w, p.Reason)
				}
			})
		},
	}
	cmd.Flags().StringVar(&dir, "migrations", "", "the release's migrations directory")
	cmd.Flags().BoolVar(&live, "live", true, "an app version is using the database")
	return cmd
}

// guard asks the server for the environment's slots; without an answer the
// contract is refused unless --force.
func (m *Main) contractGuard(ctx context.Context, app, env string, force bool) gantry.ContractGuard {
	g := gantry.ContractGuard{Force: force}
	if app == "" {
		return g
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := m.client().Environment(ctx, app, env); err == nil && st != nil {
		g.Env = st.Environment
	}
	return g
}

func newDBContractCmd(m *Main, f *dbFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "contract ENV [--force]",
		Short: "Complete the active migration once no slot needing the old schema may take traffic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec *gantry.MigrationRecord
			if f.direct(m) {
				b, err := f.binding(m, args[0])
				if err != nil {
					return err
				}
				if rec, err = f.changer().Contract(cmd.Context(), b, m.contractGuard(cmd.Context(), b.App, b.Env, force)); err != nil {
					return err
				}
			} else {
				c, app, err := m.serverApp(cmd.Context())
				if err != nil {
					return err
				}
				if rec, err = c.Contract(cmd.Context(), app, args[0], force); err != nil {
					return err
				}
			}
			return m.output(rec, func(w io.Writer) {
				fmt.Fprintf(w, "contracted %s (snapshot %s)\n", rec.Migration, rec.Snapshot)
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "skip the check that no slot needing the old schema may take traffic")
	return cmd
}

func newDBRollbackCmd(m *Main, f *dbFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rollback ENV [--force]",
		Short: "Roll back the active migration (across a contract only with --force, which loses writes)",
		Long: `Roll back the environment's active migration. Through the server it is refused
while the active slot's release needs the migration (gantry rollback ENV flips
back first), and a warm standby that needs it is stopped. Across a contract it
needs --force (admin), which restores the snapshot taken before the contract;
while the active release still needs the migration, that undoes the contract
alone, so that gantry rollback ENV can run next.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec *gantry.MigrationRecord
			if f.direct(m) {
				b, err := f.binding(m, args[0])
				if err != nil {
					return err
				}
				if rec, err = f.changer().Rollback(cmd.Context(), b, gantry.RollbackOptions{Force: force}); err != nil {
					return err
				}
			} else {
				c, app, err := m.serverApp(cmd.Context())
				if err != nil {
					return err
				}
				if rec, err = c.DatabaseRollback(cmd.Context(), app, args[0], force); err != nil {
					return err
				}
			}
			return m.output(rec, func(w io.Writer) {
				if rec.Phase == gantry.PhaseRestore {
					fmt.Fprintf(w, "restored %s", rec.Snapshot)
				} else {
					fmt.Fprintf(w, "rolled back %s", rec.Migration)
				}
				if rec.Note != "" {
					fmt.Fprintf(w, " (%s)", rec.Note)
				}
				fmt.Fprintln(w)
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "roll back across a completed contract by restoring the snapshot taken before it")
	return cmd
}

func newDBSnapshotsCmd(m *Main, f *dbFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots ENV",
		Short: "List the environment's database snapshots, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var snaps []*gantry.Snapshot
			if f.direct(m) {
				b, err := f.binding(m, args[0])
				if err != nil {
					return err
				}
				if snaps, err = f.changer().Snapshots(cmd.Context(), b); err != nil {
					return err
				}
			} else {
				c, app, err := m.serverApp(cmd.Context())
				if err != nil {
					return err
				}
				if snaps, err = c.Snapshots(cmd.Context(), app, args[0]); err != nil {
					return err
				}
			}
			if snaps == nil {
				snaps = []*gantry.Snapshot{}
			}
			return m.output(snaps, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCREATED\tSCHEMA\tSIZE\tREASON")
				for _, s := range snaps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.CreatedAt.Local().Format(time.DateTime), orDash(s.SchemaVersion), s.Size, s.Reason)
				}
				tw.Flush()
			})
		},
	}
}

func newDBSnapshotCmd(m *Main, f *dbFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "snapshot ENV [--reason R]",
		Short: "Take a snapshot of the environment's database now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s *gantry.Snapshot
			if f.direct(m) {
				b, err := f.binding(m, args[0])
				if err != nil {
					return err
				}
				if s, err = f.changer().Snapshot(cmd.Context(), b, reason); err != nil {
					return err
				}
			} else {
				c, app, err := m.serverApp(cmd.Context())
				if err != nil {
					return err
				}
				if s, err = c.Snapshot(cmd.Context(), app, args[0], reason); err != nil {
					return err
				}
			}
			return m.output(s, func(w io.Writer) { fmt.Fprintf(w, "snapshot %s (%d bytes)\n", s.Name, s.Size) })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "manual", "why the snapshot is taken")
	return cmd
}

func newDBRestoreCmd(m *Main, f *dbFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore ENV SNAPSHOT [--yes]",
		Short: "Replace the environment's database with a snapshot (asks for confirmation)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b gantry.DatabaseBinding
			if f.direct(m) {
				var err error
				if b, err = f.binding(m, args[0]); err != nil {
					return err
				}
			}
			if !yes {
				fmt.Fprintf(m.Stderr, "Restore %s into the database of %s? Every change made since the snapshot is lost. Type the environment's name to confirm: ", args[1], args[0])
				line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != args[0] {
					return gantry.Errorf(gantry.EINVALID, "restore not confirmed")
				}
			}
			var rec *gantry.MigrationRecord
			var err error
			if f.direct(m) {
				rec, err = f.changer().Restore(cmd.Context(), b, args[1])
			} else {
				var c *api.Client
				var app string
				if c, app, err = m.serverApp(cmd.Context()); err == nil {
					rec, err = c.Restore(cmd.Context(), app, args[0], args[1])
				}
			}
			if err != nil {
				return err
			}
			return m.output(rec, func(w io.Writer) { fmt.Fprintf(w, "restored %s into %s\n", args[1], args[0]) })
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (for scripts)")
	return cmd
}

func newDBCopyCmd(m *Main, f *dbFlags) *cobra.Command {
	var toURL, method, postCopy string
	cmd := &cobra.Command{
		Use:   "copy FROM_ENV TO_ENV --to-url URL [--method dump|template] [--post-copy FILE.sql]",
		Short: "Copy an environment's database into a new environment's, recording its provenance",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if toURL == "" {
				return usagef("db copy: --to-url is required")
			}
			from, err := f.binding(m, args[0])
			if err != nil {
				return err
			}
			to := from
			to.Env, to.URL = args[1], toURL
			to.SnapshotDir = f.snapshotDir(m, from.App, args[1])
			if f.snapshots != "" {
				// An explicit directory is from's own: the copy's sits beside it.
				to.SnapshotDir = filepath.Join(filepath.Dir(from.SnapshotDir), args[1])
			}
			req := gantry.CopyRequest{From: from, To: to, Method: method}
			if postCopy != "" {
				b, err := os.ReadFile(postCopy)
				if err != nil {
					return usagef("db copy: %v", err)
				}
				req.PostCopySQL = string(b)
			}
			if err := os.MkdirAll(to.SnapshotDir, 0o700); err != nil {
				return err
			}
			rec, err := f.changer().Copy(cmd.Context(), req)
			if err != nil {
				return err
			}
			return m.output(rec, func(w io.Writer) {
				fmt.Fprintf(w, "copied %s into %s by %s in %s (schema %s", args[0], args[1], rec.Method, rec.Took.Round(time.Millisecond), orDash(rec.SchemaVersion))
				if rec.PostCopy {
					fmt.Fprint(w, ", post-copy script run")
				}
				fmt.Fprintln(w, ")")
			})
		},
	}
	cmd.Flags().StringVar(&toURL, "to-url", "", "the new environment's database URL (created if missing, else must be empty)")
	cmd.Flags().StringVar(&method, "method", gantry.CopyDump, "dump (online, pg_dump/pg_restore -j) or template (CREATE DATABASE … TEMPLATE; the source must be quiet)")
	cmd.Flags().StringVar(&postCopy, "post-copy", "", "SQL script run in the copy (anonymise, neutralise e-mail and webhooks)")
	return cmd
}
