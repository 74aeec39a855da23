package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newDiffCmd) }

func newDiffCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "diff ENV1 ENV2",
		Short: "Compare two environments: release, artifact digests, variables and secrets by name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			d, err := c.Diff(cmd.Context(), app, args[0], args[1])
			if err != nil {
				return err
			}
			return m.output(d, func(w io.Writer) {
				a, b := d.Envs[0], d.Envs[1]
				fmt.Fprintf(w, "%-10s %s (%s, %.7s)\n%-10s %s (%s, %.7s)\n", a.Env, a.Version, a.Release, a.Commit, b.Env, b.Version, b.Release, b.Commit)
				if d.Same {
					fmt.Fprintln(w, "same release: identical artifacts")
				}
				for _, x := range d.Artifacts {
					mark := "differs"
					if x.Same {
						mark = "same"
					}
					fmt.Fprintf(w, "artifact %-10s %-7s %s | %s\n", x.Service, mark, shortDigest(x.A), shortDigest(x.B))
				}
				for _, v := range d.Vars {
					if !v.Equal {
						fmt.Fprintf(w, "var %s: %s\n", v.Name, presence(v.InA, v.InB, a.Env, b.Env))
					}
				}
				for _, s := range d.Secrets {
					if !(s.InA && s.InB) {
						fmt.Fprintf(w, "secret %s: %s\n", s.Name, presence(s.InA, s.InB, a.Env, b.Env))
					}
				}
			})
		},
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	if d == "" {
		return "-"
	}
	return d
}

func presence(inA, inB bool, a, b string) string {
	switch {
	case inA && inB:
		return "values differ"
	case inA:
		return "only in " + a
	default:
		return "only in " + b
	}
}
