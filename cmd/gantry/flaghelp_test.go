package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagUsageHasNoBackquotes walks every verb: pflag takes a backquoted word
// in a flag's usage as the name of its value, so "run `gantry proxy run
// --follow URL`" printed "--follow-routers gantry proxy run --follow URL" in
// --help, as if the boolean flag took that as its argument.
func TestFlagUsageHasNoBackquotes(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q has a backquote, which --help shows as the flag's value name", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewMain().rootCommand())
}
