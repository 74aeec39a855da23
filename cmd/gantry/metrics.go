package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newMetricsCmd) }

func newMetricsCmd(m *Main) *cobra.Command {
	var env, since, from, to, production string
	cmd := &cobra.Command{
		Use:   "metrics [APP] [--env E] [--since 30d | --from T [--to T]]",
		Short: "Show delivery metrics: deployment frequency, lead time, change failure rate, time to restore",
		Long: `Show an app's delivery metrics over a period, per environment and for its
production environments together (prod and production unless --production
names others). docs/metrics.md defines each figure.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			q := gantry.DeliveryQuery{Env: env}
			if len(args) == 1 {
				q.App = args[0]
			} else {
				app, err := m.appName(cmd.Context(), c)
				if err != nil {
					return err
				}
				q.App = app
			}
			now := time.Now()
			var err error
			if q.From, q.To, err = metricsPeriod(since, from, to, now); err != nil {
				return err
			}
			if production != "" {
				q.Production = strings.Split(production, ",")
			}
			rep, err := c.Delivery(cmd.Context(), q)
			if err != nil {
				return err
			}
			return m.output(rep, func(w io.Writer) { printDelivery(w, rep) })
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	cmd.Flags().StringVar(&since, "since", "", "the period: a duration back from now (30d, 12h) or a time (default 30d)")
	cmd.Flags().StringVar(&from, "from", "", "the period's start: a time (RFC 3339) or a date (instead of --since)")
	cmd.Flags().StringVar(&to, "to", "", "the period's end: a time or a date (default now)")
	cmd.Flags().StringVar(&production, "production", "", "environments that make up production, comma-separated (default prod,production)")
	return cmd
}

// metricsPeriod reads the period flags: --since, or --from and --to.
func metricsPeriod(since, from, to string, now time.Time) (time.Time, time.Time, error) {
	if since != "" && (from != "" || to != "") {
		return time.Time{}, time.Time{}, usagef("--since and --from/--to both give the period: use one")
	}
	end := now
	if to != "" {
		t, err := parseWhen("--to", to, now)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		end = t
	}
	start := end.AddDate(0, 0, -api.DefaultMetricsDays)
	flag, when := "--from", from
	if since != "" {
		flag, when = "--since", since
	}
	if when != "" {
		t, err := parseWhen(flag, when, now)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		start = t
	}
	if err := (gantry.DeliveryQuery{App: "-", From: start, To: end}).Validate(); err != nil {
		return time.Time{}, time.Time{}, usagef("%s", gantry.ErrorMessage(err))
	}
	return start, end, nil
}

func printDelivery(w io.Writer, rep *gantry.DeliveryReport) {
	days := rep.To.Sub(rep.From).Hours() / 24
	fmt.Fprintf(w, "%s, %s to %s (%s days)\n", rep.App, rep.From.Local().Format("2006-01-02 15:04"),
		rep.To.Local().Format("2006-01-02 15:04"), trimFloat(days, 1))
	if len(rep.Environments) == 0 {
		fmt.Fprintln(w, "no environment yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tDEPLOYS\tPER DAY\tFAILED\tFAILURE RATE\tLEAD TIME (MEDIAN, P90)\tTIME TO RESTORE (MEDIAN, P90)\tUNRESTORED")
	row := func(name string, f *gantry.DeliveryFigures) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\n", name, f.Deployments, trimFloat(f.PerDay, 2), f.Failures.Total,
			percent(f), durationPair(f.LeadTime), durationPair(f.TimeToRestore), f.Unrestored)
	}
	for _, f := range rep.Environments {
		name := f.Envs[0]
		if f.Production {
			name += " *"
		}
		row(name, f)
	}
	if rep.Production != nil && len(rep.Production.Envs) > 1 {
		row("production", rep.Production)
	}
	tw.Flush()
	if rep.Production != nil {
		p := rep.Production
		fmt.Fprintf(w, "* production (%s): %d failed of %d: %d rolled back, %d rolled back automatically, %d failed\n",
			strings.Join(p.Envs, ", "), p.Failures.Total, p.Deployments, p.Failures.RolledBack, p.Failures.AutoRolledBack, p.Failures.Failed)
	}
}

func percent(f *gantry.DeliveryFigures) string {
	if f.Deployments == 0 {
		return "-"
	}
	return trimFloat(100*f.ChangeFailureRate, 1) + "%"
}

func durationPair(s gantry.DurationStats) string {
	if s.Count == 0 {
		return "-"
	}
	return gantry.HumanSeconds(s.Median) + ", " + gantry.HumanSeconds(s.P90)
}

func trimFloat(x float64, decimals int) string {
	s := fmt.Sprintf("%.*f", decimals, x)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
