package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newAuditCmd) }

func newAuditCmd(m *Main) *cobra.Command {
	var env, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--env E] [--since T]",
		Short: "Show the audit trail: every state change and every denied attempt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := gantry.AuditFilter{App: m.App, Env: env, Limit: limit}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			es, err := m.client().ListAudit(cmd.Context(), f)
			if err != nil {
				return err
			}
			return m.output(es, func(w io.Writer) {
				for _, e := range es {
					where := strings.Trim(e.App+"/"+e.Env, "/")
					result := e.Result
					if e.Code != "" {
						result += " (" + e.Code + ")"
					}
					fmt.Fprintf(w, "%5d %s %-14s %-18s %-14s %-22s %s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"),
						e.Actor, result, where, e.Release, shortOperation(e.Operation))
				}
			})
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only entries of this environment")
	cmd.Flags().StringVar(&since, "since", "", "only entries since a time (RFC 3339) or a duration ago (e.g. 24h)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many entries (default all)")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain against its key and the head kept outside the state: exit 1 naming the first changed, removed or reordered entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := m.client().VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if err := m.output(v, func(w io.Writer) { printAuditReport(w, v) }); err != nil {
				return err
			}
			if !v.OK {
				return gantry.Errorf(gantry.EFAILED, "audit trail broken at entry %d (%s): %s", v.Break.Seq, v.Break.What, v.Break.Msg)
			}
			return nil
		},
	})
	return cmd
}

// printAuditReport says what verify found, what it checked and what that
// protects against, so that "intact" is not read as more than it is.
func printAuditReport(w io.Writer, v *gantry.AuditReport) {
	if v.OK {
		fmt.Fprintf(w, "audit trail intact: %d entries\n", v.Entries)
	} else {
		fmt.Fprintf(w, "audit trail BROKEN at entry %d (%s): %s\n", v.Break.Seq, v.Break.What, v.Break.Msg)
	}
	switch {
	case v.Keyed && v.KeyedFrom > 1:
		fmt.Fprintf(w, "keyed from entry %d (entries 1 to %d were written before the key existed and are sealed by the first keyed one)\n", v.KeyedFrom, v.KeyedFrom-1)
	case v.Keyed:
		fmt.Fprintf(w, "keyed from entry %d\n", v.KeyedFrom)
	default:
		fmt.Fprintln(w, "not keyed")
	}
	if v.KeyPath != "" {
		fmt.Fprintf(w, "key:  %s\nhead: %s (entry %d)\n", v.KeyPath, v.HeadPath, v.AnchorSeq)
	}
	for _, l := range []struct {
		title string
		items []string
	}{{"checked", v.Checked}, {"protects against", v.Protects}, {"does not protect against", v.Unprotected}} {
		fmt.Fprintf(w, "%s:\n", l.title)
		for _, it := range l.items {
			fmt.Fprintf(w, "  - %s\n", it)
		}
	}
}

// parseSince reads --since: an RFC 3339 time, a date, or a duration
// before now.
func parseSince(s string, now time.Time) (time.Time, error) { return parseWhen("--since", s, now) }

// parseWhen reads a time flag: an RFC 3339 time, a date (local), or a
// duration before now, in Go's units or days (30d).
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && strings.HasSuffix(s, "d") && n > 0 {
		return now.AddDate(0, 0, -n), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("%s %q: want a time (2026-11-22T01:00:00Z), a date (2026-11-22) or a duration (24h, 30d)", flag, s)
}

// shortOperation drops the common prefix of a route pattern:
// "POST /v1/apps/{app}/environments/{env}/deploy" reads "POST deploy".
func shortOperation(op string) string {
	method, path, ok := strings.Cut(op, " ")
	if !ok {
		return op
	}
	path = strings.TrimPrefix(path, "/v1/apps/{app}/environments/{env}/")
	path = strings.TrimPrefix(path, "/v1/apps/{app}/")
	path = strings.TrimPrefix(path, "/v1/")
	return method + " " + path
}
