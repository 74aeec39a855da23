package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() {
	register(newStatusCmd)
	register(newHistoryCmd)
}

func newStatusCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "status [ENV]",
		Short: "Show what each environment runs: active and standby slots, health, lock",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			var envs []api.EnvironmentStatus
			if len(args) == 1 {
				e, err := c.Environment(cmd.Context(), app, args[0])
				if err != nil {
					return err
				}
				envs = []api.EnvironmentStatus{*e}
			} else if envs, err = c.ListEnvironments(cmd.Context(), app); err != nil {
				return err
			}
			return m.output(envs, func(w io.Writer) { printStatus(w, app, envs) })
		},
	}
}

func printStatus(w io.Writer, app string, envs []api.EnvironmentStatus) {
	if len(envs) == 0 {
		fmt.Fprintf(w, "app %s has no environment yet: deploy a release (gantry deploy test --ref main)\n", app)
		return
	}
	sort.Slice(envs, func(i, j int) bool { return envs[i].Name < envs[j].Name })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tSLOT\tSTATE\tVERSION\tRELEASE\tSINCE\tINSTANCES\tHOSTS")
	for _, e := range envs {
		healthy := map[string]bool{}
		routes := e.Routes
		if len(routes) == 0 && e.Route != nil {
			routes = []gantry.RouteStatus{*e.Route}
		}
		for _, rt := range routes {
			for _, t := range rt.Active {
				healthy[t.Addr] = t.Healthy
			}
		}
		first := true
		for _, name := range []string{gantry.SlotBlue, gantry.SlotGreen} {
			s := e.Slots[name]
			if s == nil || s.State == gantry.SlotEmpty {
				continue
			}
			env, hosts := "", ""
			if first {
				env, hosts = e.Name, strings.Join(e.Spec.Hosts, ",")
				first = false
			}
			state := s.State
			if s.State == gantry.SlotStandby && !s.WarmUntil.IsZero() {
				state += fmt.Sprintf(" (warm %s)", time.Until(s.WarmUntil).Round(time.Second))
			}
			var insts []string
			for _, in := range s.Instances {
				mark := ""
				if ok, routed := healthy[in.Addr]; routed && !ok {
					mark = "!"
				}
				if in.Version != "" && in.Version != s.Version {
					mark += "@" + in.Version // a service with its own version
				}
				insts = append(insts, fmt.Sprintf("%s-%d%s", in.Service, in.Index, mark))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", env, name, state, s.Version, s.ReleaseID, s.Since.Local().Format("01-02 15:04:05"), strings.Join(insts, " "), hosts)
		}
		if first {
			fmt.Fprintf(tw, "%s\t-\tempty\t\t\t\t\t%s\n", e.Name, strings.Join(e.Spec.Hosts, ","))
		}
		if e.Lock != nil {
			fmt.Fprintf(tw, "\tlocked by %s (%s) since %s\t\t\t\t\t\t\n", e.Lock.Holder, e.Lock.Operation+" "+e.Lock.Reason, e.Lock.Since.Local().Format("15:04:05"))
		}
	}
	tw.Flush()
}

func newHistoryCmd(m *Main) *cobra.Command {
	var limit int
	var before int64
	cmd := &cobra.Command{
		Use:   "history [ENV | DEPLOYMENT_ID]",
		Short: "List deployments, newest first, or show one deployment's journal",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			env := ""
			if len(args) == 1 {
				var id int64
				if _, err := fmt.Sscanf(args[0], "%d", &id); err == nil && fmt.Sprint(id) == args[0] {
					d, err := c.FindDeployment(cmd.Context(), app, id)
					if err != nil {
						return err
					}
					return m.output(d, func(w io.Writer) { printJournal(w, d) })
				}
				env = args[0]
			}
			ds, err := c.ListDeployments(cmd.Context(), app, env, limit, before)
			if err != nil {
				return err
			}
			return m.output(ds, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tENV\tKIND\tVERSION\tSTATE\tBY\tSTARTED\tTOOK\tNOTE")
				for _, d := range ds {
					took := ""
					if !d.FinishedAt.IsZero() {
						took = d.FinishedAt.Sub(d.CreatedAt).Round(time.Millisecond).String()
					}
					note := d.Error
					if i := strings.IndexByte(note, '\n'); i >= 0 {
						note = note[:i]
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Env, d.Kind, d.Version, d.State, d.Actor, d.CreatedAt.Local().Format("01-02 15:04:05"), took, note)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many deployments to show")
	cmd.Flags().Int64Var(&before, "before", 0, "show deployments older than this id")
	return cmd
}

func printJournal(w io.Writer, d *gantry.Deployment) {
	fmt.Fprintf(w, "deployment #%d: %s of %s (%s) to %s by %s: %s\n", d.ID, d.Kind, d.Version, d.ReleaseID, d.Env, d.Actor, d.State)
	for _, s := range d.Steps {
		took := ""
		if !s.EndedAt.IsZero() {
			took = s.EndedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "  %2d %-18s %-8s %8s  %s\n", s.Seq, s.Name, s.State, took, s.Detail)
	}
	if d.Error != "" {
		fmt.Fprintf(w, "error: %s\n", d.Error)
	}
}
