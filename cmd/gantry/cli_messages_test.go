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

// TestSecretSetNameValue: a new user's first guess, NAME=VALUE on the
// command line, is refused before anything is read or sent, saying how the
// value is given (a name with "=" was refused by the server only after the
// value was read, and the hint repeated the wrong form).
func TestSecretSetNameValue(t *testing.T) {
	_, errs, code := runCLI(t, "http://127.0.0.1:1", "secret", "set", "test", "DB_PASS=x")
	want := "gantry: secret set takes NAME, not NAME=VALUE: the value is read from stdin, which keeps it out of the shell's history and the process list (echo -n VALUE | gantry secret set test DB_PASS)"
	if code != 2 || strings.TrimSpace(errs) != want {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs, want)
	}
}

// TestRoutersNoneFollow: with no router reporting, `gantry routers` says so
// and how one follows, instead of ending after the table's version.
func TestRoutersNoneFollow(t *testing.T) {
	s := newAuditFixture(t).open(t)
	defer s.Close()
	out := mustCLI(t, "unix://"+s.SocketPath, "routers")
	want := "leader: this server (the only one on its store)\nroute table: version 0\nno router follows this control plane (a server started with --follow-routers is served by routers that run gantry proxy run --follow URL)\n"
	if out != want {
		t.Errorf("gantry routers printed\n%s\nwant\n%s", out, want)
	}
}

// TestUnknownSubcommand: a verb a group does not have is a usage error
// (exit 2) naming it, with the nearest verb when there is one, under every
// group; cobra printed the group's help and exited 0, so a script's typo
// passed for success. The bare group still prints its help.
func TestUnknownSubcommand(t *testing.T) {
	var groups []string
	for _, c := range NewMain().rootCommand().Commands() {
		if c.HasSubCommands() {
			groups = append(groups, c.Name())
		}
	}
	if len(groups) < 5 {
		t.Fatalf("groups %v: the walk found too few", groups)
	}
	for _, g := range groups {
		_, errs, code := runCLI(t, "http://127.0.0.1:1", g, "frobnicate")
		if code != 2 || !strings.Contains(errs, `unknown command "frobnicate" for "gantry `+g+`"`) {
			t.Errorf("gantry %s frobnicate: exit %d, stderr %q; want exit 2 naming the verb", g, code, errs)
		}
	}
	if _, errs, code := runCLI(t, "http://127.0.0.1:1", "canary", "stauts"); code != 2 || !strings.Contains(errs, "did you mean status?") {
		t.Errorf("gantry canary stauts: exit %d, stderr %q; want a suggestion", code, errs)
	}
	if out, _, code := runCLI(t, "http://127.0.0.1:1", "canary"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("gantry canary: exit %d, stdout %q; want its help", code, out)
	}
}
