package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/gantry-dev/gantry"
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

	show := &cobra.Command{
		Use:   "show RELEASE",
		Short: "Show a release: version, commit, digests",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			rel, err := c.FindRelease(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			return m.output(rel, func(w io.Writer) { printRelease(w, rel) })
		},
	}
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
		fmt.Fprintf(w, "  %-12s %s %s\n", n, a.Kind, ref)
	}
}
