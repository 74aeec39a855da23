package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newReleaseCmd) }

func newReleaseCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Build and inspect releases"}
	var req gantry.BuildRequest
	build := &cobra.Command{
		Use:   "build [--ref REF] [--version V] [--rebuild]",
		Short: "Build a release from a git ref (exactly that commit, never the working tree)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			req.App = app
			p := m.newProgress()
			rel, err := c.BuildRelease(cmd.Context(), req, p.event)
			p.done()
			if err != nil {
				return err
			}
			return m.output(rel, func(w io.Writer) { printRelease(w, rel) })
		},
	}
	build.Flags().StringVar(&req.Ref, "ref", "HEAD", "branch, tag or commit to build")
	build.Flags().StringVar(&req.Version, "version", "", "version to record (default: from the manifest's version scheme)")
	build.Flags().BoolVar(&req.Rebuild, "rebuild", false, "build again even if this commit has a release")

	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			rels, err := c.ListReleases(cmd.Context(), app, limit)
			if err != nil {
				return err
			}
			return m.output(rels, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RELEASE\tVERSION\tCOMMIT\tREF\tBUILT BY\tBUILT")
				for _, r := range rels {
					fmt.Fprintf(tw, "%s\t%s\t%.7s\t%s\t%s\t%s\n", r.ID, r.Version, r.Commit, r.Ref, r.Builder, r.CreatedAt.Format("2006-01-02 15:04"))
				}
				tw.Flush()
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many releases to show")

	var evidence bool
	show := &cobra.Command{
		Use:   "show RELEASE [--evidence]",
		Short: "Show a release: version, commit, digests; with --evidence, what stands behind it in each environment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			if evidence {
				ev, err := c.Evidence(cmd.Context(), app, args[0])
				if err != nil {
					return err
				}
				return m.output(ev, func(w io.Writer) { printEvidence(w, ev) })
			}
			rel, err := c.FindRelease(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			return m.output(rel, func(w io.Writer) { printRelease(w, rel) })
		},
	}
	show.Flags().BoolVar(&evidence, "evidence", false, "show the deployments, checks, approvals and configuration differences behind the release")
	cmd.AddCommand(build, list, show)
	return cmd
}

func printRelease(w io.Writer, r *gantry.Release) {
	fmt.Fprintf(w, "release   %s\nversion   %s\ncommit    %s\nref       %s\nmanifest  %s\nbuilt by  %s at %s\n",
		r.ID, r.Version, r.Commit, r.Ref, r.ManifestDigest, r.Builder, r.CreatedAt.Format("2006-01-02 15:04:05 MST"))
	names := make([]string, 0, len(r.Artifacts))
	for n := range r.Artifacts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := r.Artifacts[n]
		ref := a.Digest
		if a.Image != "" {
			ref = a.Image
		}
		if a.Version != "" {
			ref += "  version " + a.Version
		}
		fmt.Fprintf(w, "  %-12s %s %s\n", n, a.Kind, ref)
	}
}

func printEvidence(w io.Writer, ev *api.Evidence) {
	printRelease(w, ev.Release)
	if len(ev.Environments) == 0 {
		fmt.Fprintln(w, "\nnot deployed anywhere yet")
	}
	for _, e := range ev.Environments {
		fmt.Fprintf(w, "\n%s", e.Env)
		if e.PromotedFrom != "" {
			fmt.Fprintf(w, " (promoted from %s)", e.PromotedFrom)
		}
		fmt.Fprintln(w)
		for _, d := range e.Deployments {
			fmt.Fprintf(w, "  #%d %s by %s at %s: %s\n", d.ID, d.Kind, d.Actor, d.CreatedAt.Local().Format("2006-01-02 15:04:05"), d.State)
		}
		for _, s := range e.Checks {
			fmt.Fprintf(w, "  check %-18s %s\n", s.Name, s.Detail)
		}
		for _, a := range e.Approvals {
			fmt.Fprintf(w, "  approved by %s (%s) at %s: %s [%.19s]\n", a.Approver, a.Role, a.CreatedAt.Local().Format("2006-01-02 15:04"), a.Comment, a.Fingerprint)
		}
		if d := e.ConfigDiff; d != nil {
			for _, v := range d.Vars {
				if !v.Equal {
					fmt.Fprintf(w, "  config: var %s %s\n", v.Name, presence(v.InA, v.InB, d.Envs[0].Env, d.Envs[1].Env))
				}
			}
			for _, s := range d.Secrets {
				if !(s.InA && s.InB) {
					fmt.Fprintf(w, "  config: secret %s %s\n", s.Name, presence(s.InA, s.InB, d.Envs[0].Env, d.Envs[1].Env))
				}
			}
		}
	}
}
