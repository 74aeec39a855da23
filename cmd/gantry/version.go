package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

func newVersionCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{"version": gantry.Version, "go": runtime.Version()}
			return m.output(v, func(w io.Writer) { fmt.Fprintf(w, "gantry %s (%s)\n", v["version"], v["go"]) })
		},
	}
}
