package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
)

// Main is the program: its streams and the global flags. End-to-end tests
// build one with their own streams and run it in-process.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (tests replace it).
	Getenv func(string) string

	JSON   bool
	Server string
	Token  string
	App    string
}

// NewMain returns a Main on the process's streams.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// commands holds the constructors of the subcommands; each lives in a file
// of its own and registers itself from init.
var commands []func(*Main) *cobra.Command

func register(f func(*Main) *cobra.Command) { commands = append(commands, f) }

// usageError marks a command-line mistake (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "gantry",
		Short:         "Deploy an app from a git commit to test and, unchanged, to production",
		Version:       gantry.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(m.Stdin)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.BoolVar(&m.JSON, "json", false, "print machine-readable JSON")
	pf.StringVar(&m.Server, "server", "", "server URL, or unix:///path/gantry.sock (default $GANTRY_SERVER, else ./.gantry/gantry.sock if it exists, else http://127.0.0.1:7878)")
	pf.StringVar(&m.Token, "token", "", "API token (default $GANTRY_TOKEN; not needed on the server's own unix socket)")
	pf.StringVar(&m.App, "app", "", "app name (default: the gantry.yml in the current directory, or the only app)")
	for _, f := range commands {
		root.AddCommand(f(m))
	}
	for _, c := range root.Commands() {
		refuseUnknownVerbs(c)
	}
	return root
}

// refuseUnknownVerbs makes a word a group (and its groups) does not know a
// usage error, as the root does: cobra gives a group without a Run its
// help and a success.
func refuseUnknownVerbs(c *cobra.Command) {
	if !c.HasSubCommands() {
		return
	}
	if !c.Runnable() {
		c.SuggestionsMinimumDistance = 2 // the root's default
		c.Args = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError{errors.New(msg)}
		}
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	for _, sub := range c.Commands() {
		refuseUnknownVerbs(sub)
	}
}

// Run runs the program with args and returns its exit code: 0 ok, 1 failed,
// 2 usage, 3 conflict or locked, 4 refused by policy.
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(m.Stderr, "gantry: %v\n", err)
		return 2
	}
	m.printError(err)
	return gantry.ExitCode(err)
}

// isCobraUsage recognises cobra's own argument errors, which it does not type.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires exactly", "invalid argument", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func (m *Main) printError(err error) {
	msg := gantry.ErrorMessage(err)
	if gantry.ErrorCode(err) == gantry.EINTERNAL {
		msg = err.Error() // the CLI's own failures are worth showing in full
	}
	if m.JSON {
		_ = json.NewEncoder(m.Stderr).Encode(map[string]string{"error": msg, "code": gantry.ErrorCode(err)})
		return
	}
	fmt.Fprintf(m.Stderr, "gantry: %s\n", msg)
}

// output prints v as JSON with --json, and calls human otherwise.
func (m *Main) output(v any, human func(w io.Writer)) error {
	if m.JSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(m.Stdout)
	return nil
}
