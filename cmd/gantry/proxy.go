package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy/admin"
	"github.com/spf13/cobra"
)

func init() { register(newProxyCmd) }

// defaultProxyAdmin is where `gantry proxy run` listens for its admin API
// and where the other proxy verbs look for it.
var defaultProxyAdmin = filepath.Join(".gantry", "proxy.sock")

// defaultProxyPidFile is where `gantry proxy run` writes the id of the
// process serving, and where `gantry proxy reload` reads it.
var defaultProxyPidFile = filepath.Join(".gantry", "proxy.pid")

// proxyAdminFlags are the flags every client verb of `gantry proxy` shares.
type proxyAdminFlags struct {
	admin     string
	tokenFile string
}

func (f *proxyAdminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.admin, "admin", defaultProxyAdmin, "admin API of the proxy: a unix socket path or http://127.0.0.1:PORT")
	cmd.Flags().StringVar(&f.tokenFile, "admin-token-file", "", "file holding the bearer token of a TCP admin API")
}

func (f *proxyAdminFlags) client() (*admin.Client, error) {
	token, err := readTokenFile("--admin-token-file", f.tokenFile)
	if err != nil {
		return nil, err
	}
	return admin.NewClient(f.admin, token), nil
}

// readTokenFile returns the trimmed content of path ("" for no path), the
// file named by flag; an empty file is refused.
func readTokenFile(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", usagef("%s: %s is empty", flag, path)
	}
	return token, nil
}

func newProxyCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the traffic router standalone, and drive it over its admin API",
		Long: `gantry proxy runs the router as its own process (gantry proxy run), so the
control plane can restart without dropping traffic; the other verbs drive a
running proxy through its admin API. SIGHUP makes a running proxy hand its
sockets to a fresh copy of its binary (zero-downtime restart or upgrade).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newProxyRunCmd(m),
		newProxyReloadCmd(m),
		newProxyDeployCmd(m),
		newProxyRollbackCmd(m),
		newProxyPauseCmd(m),
		newProxyResumeCmd(m),
		newProxyMaintenanceCmd(m),
		newProxyPreviewCmd(m),
		newProxyRemoveCmd(m),
		newProxyStatusCmd(m),
	)
	return cmd
}

func newProxyDeployCmd(m *Main) *cobra.Command {
	var af proxyAdminFlags
	var route gantry.Route
	var targets []string
	cmd := &cobra.Command{
		Use:   "deploy ROUTE --host HOST --target ADDR",
		Short: "Create or update a route and switch it to targets once they are healthy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			route.Name = args[0]
			if len(route.Hosts) == 0 {
				return usagef("deploy %s: at least one --host is required", route.Name)
			}
			if len(targets) == 0 {
				return usagef("deploy %s: at least one --target is required", route.Name)
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Deploy(cmd.Context(), route, targets)
			if err != nil {
				return err
			}
			return m.output(res, func(w io.Writer) { printSwitch(w, "deployed", res) })
		},
	}
	af.register(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&route.Hosts, "host", nil, "host name the route serves (repeatable; *.domain for a wildcard)")
	f.StringArrayVar(&targets, "target", nil, "host:port of a target (repeatable)")
	f.StringArrayVar(&route.PreviewHosts, "preview-host", nil, "host name that serves the preview targets (repeatable)")
	f.StringVar(&route.PathPrefix, "path-prefix", "", "serve only request paths under this prefix")
	f.StringVar(&route.Health.Path, "health-path", "", "HTTP path probed on targets (default: TCP connect)")
	f.DurationVar(&route.Health.Interval, "health-interval", 0, "time between health probes (default: the router's)")
	f.DurationVar(&route.DeployTimeout, "deploy-timeout", 0, "how long the targets have to become healthy (default: the router's)")
	f.DurationVar(&route.DrainTimeout, "drain-timeout", 0, "how long the old targets keep in-flight requests (default: the router's)")
	f.BoolVar(&route.RedirectHTTPS, "redirect-https", false, "answer plain HTTP requests with a redirect to HTTPS")
	return cmd
}

func printSwitch(w io.Writer, verb string, res *gantry.SwitchResult) {
	fmt.Fprintf(w, "%s %s to %s", verb, res.Route, strings.Join(res.To, ", "))
	if len(res.From) > 0 {
		fmt.Fprintf(w, " (from %s)", strings.Join(res.From, ", "))
	}
	fmt.Fprintf(w, "\nhealth round %s, drained %d, cancelled %d in %s\n",
		res.HealthRound.Round(time.Millisecond), res.Drained, res.Cancelled, res.DrainTime.Round(time.Millisecond))
}

func newProxyRollbackCmd(m *Main) *cobra.Command {
	var af proxyAdminFlags
	cmd := &cobra.Command{
		Use:   "rollback ROUTE",
		Short: "Switch a route back to its previous targets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Rollback(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return m.output(res, func(w io.Writer) { printSwitch(w, "rolled back", res) })
		},
	}
	af.register(cmd)
	return cmd
}

// simpleProxyVerb builds a verb that makes one call and reports ok.
func simpleProxyVerb(m *Main, use, short string, args cobra.PositionalArgs, setup func(*cobra.Command), call func(cmd *cobra.Command, c *admin.Client, args []string) (string, error)) *cobra.Command {
	var af proxyAdminFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			defer c.Close()
			msg, err := call(cmd, c, args)
			if err != nil {
				return err
			}
			return m.output(map[string]any{"ok": true, "route": args[0]}, func(w io.Writer) { fmt.Fprintln(w, msg) })
		},
	}
	af.register(cmd)
	if setup != nil {
		setup(cmd)
	}
	return cmd
}

func newProxyPauseCmd(m *Main) *cobra.Command {
	var writesOnly bool
	return simpleProxyVerb(m, "pause ROUTE", "Hold a route's requests (or only its writes) until resume", cobra.ExactArgs(1),
		func(cmd *cobra.Command) {
			cmd.Flags().BoolVar(&writesOnly, "writes-only", false, "hold only writes (POST, PUT, PATCH, DELETE); reads pass")
		},
		func(cmd *cobra.Command, c *admin.Client, args []string) (string, error) {
			what := "paused"
			if writesOnly {
				what = "paused writes of"
			}
			return what + " " + args[0], c.Pause(cmd.Context(), args[0], writesOnly)
		})
}

func newProxyResumeCmd(m *Main) *cobra.Command {
	return simpleProxyVerb(m, "resume ROUTE", "Release a paused route", cobra.ExactArgs(1), nil,
		func(cmd *cobra.Command, c *admin.Client, args []string) (string, error) {
			return "resumed " + args[0], c.Resume(cmd.Context(), args[0])
		})
}

func newProxyMaintenanceCmd(m *Main) *cobra.Command {
	var message string
	return simpleProxyVerb(m, "maintenance ROUTE on|off", "Answer a route's requests with a maintenance page, or stop", cobra.ExactArgs(2),
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&message, "message", "", "message shown on the maintenance page")
		},
		func(cmd *cobra.Command, c *admin.Client, args []string) (string, error) {
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
				if message != "" {
					return "", usagef("maintenance %s off: --message applies to on only", args[0])
				}
			default:
				return "", usagef("maintenance %s %s: want on or off", args[0], args[1])
			}
			return fmt.Sprintf("maintenance %s for %s", args[1], args[0]), c.Maintenance(cmd.Context(), args[0], on, message)
		})
}

func newProxyPreviewCmd(m *Main) *cobra.Command {
	var targets []string
	return simpleProxyVerb(m, "preview ROUTE [--target ADDR ...]", "Set the targets behind a route's preview hosts (none clears them)", cobra.ExactArgs(1),
		func(cmd *cobra.Command) {
			cmd.Flags().StringArrayVar(&targets, "target", nil, "host:port of a preview target (repeatable)")
		},
		func(cmd *cobra.Command, c *admin.Client, args []string) (string, error) {
			msg := "cleared the preview of " + args[0]
			if len(targets) > 0 {
				msg = fmt.Sprintf("preview of %s on %s", args[0], strings.Join(targets, ", "))
			}
			return msg, c.SetPreview(cmd.Context(), args[0], targets)
		})
}

func newProxyRemoveCmd(m *Main) *cobra.Command {
	return simpleProxyVerb(m, "remove ROUTE", "Remove a route", cobra.ExactArgs(1), nil,
		func(cmd *cobra.Command, c *admin.Client, args []string) (string, error) {
			return "removed " + args[0], c.RemoveRoute(cmd.Context(), args[0])
		})
}

func newProxyStatusCmd(m *Main) *cobra.Command {
	var af proxyAdminFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the routes of a running proxy and the health of their targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			defer c.Close()
			routes, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if routes == nil {
				routes = []gantry.RouteStatus{}
			}
			return m.output(routes, func(w io.Writer) { printProxyStatus(w, routes) })
		},
	}
	af.register(cmd)
	return cmd
}

func printProxyStatus(w io.Writer, routes []gantry.RouteStatus) {
	if len(routes) == 0 {
		fmt.Fprintln(w, "no routes")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tHOSTS\tSTATE\tACTIVE\tPREVIOUS\tSWITCHES")
	for _, r := range routes {
		var active []string
		for _, t := range r.Active {
			mark := "up"
			if !t.Healthy {
				mark = "down"
			}
			active = append(active, t.Addr+" "+mark)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.Route.Name, strings.Join(r.Route.Hosts, ","), routeState(r),
			orDash(strings.Join(active, ", ")), orDash(strings.Join(r.Previous, ",")), r.Switches)
	}
	tw.Flush()
}

func routeState(r gantry.RouteStatus) string {
	switch {
	case r.Maintenance:
		return "maintenance"
	case r.Paused && r.WritesOnly:
		return "writes paused"
	case r.Paused:
		return "paused"
	default:
		return "serving"
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
