package main

import (
	"fmt"
	"io"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newRoutersCmd) }

// routersView is what `gantry routers --json` prints.
type routersView struct {
	Leader *api.LeaderStatus  `json:"leader"`
	Table  *api.RoutersStatus `json:"routes"`
}

func newRoutersCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routers",
		Short: "Show the control plane's leader and what each following router serves",
		Long: `Show which server leads (runs deployments) and, for a control plane
started with --follow-routers, the route table's version and what each router
following it (gantry proxy run --follow) reports: the version it serves, a
version it could not apply and why, when it was last heard from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := m.client()
			l, err := c.Leader(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.Routers(cmd.Context())
			if err != nil {
				return err
			}
			return m.output(routersView{Leader: l, Table: st}, func(w io.Writer) {
				switch {
				case l.Lease == nil:
					fmt.Fprintln(w, "leader: this server (the only one on its store)")
				default:
					fmt.Fprintf(w, "leader: %s at %s (epoch %d)\n", l.Lease.Holder, l.Lease.Addr, l.Lease.Epoch)
				}
				fmt.Fprintf(w, "route table: version %d\n", st.Version)
				if len(st.Routers) == 0 {
					fmt.Fprintln(w, "no router follows this control plane (a server started with --follow-routers is served by routers that run gantry proxy run --follow URL)")
				}
				for _, r := range st.Routers {
					state := "up to date"
					switch r.State(st.Version) {
					case gantry.RouterBehind:
						state = fmt.Sprintf("behind (serves version %d)", r.Applied)
					case gantry.RouterFailed:
						state = fmt.Sprintf("failed version %d: %s", r.Failed, r.Error)
					}
					fmt.Fprintf(w, "  %-16s %-28s %s; heard %s ago\n", r.Name, r.URL, state, time.Since(r.Seen).Round(time.Second))
				}
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "forget NAME",
		Short: "Forget a router gone for good, so that switches stop waiting for it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := m.client().ForgetRouter(cmd.Context(), args[0]); err != nil {
				return err
			}
			return m.output(map[string]string{"router": args[0], "status": "forgotten"}, func(w io.Writer) { fmt.Fprintf(w, "router %s forgotten\n", args[0]) })
		},
	})
	return cmd
}
