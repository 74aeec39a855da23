package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/gantry-dev/gantry/manifest/scaffold"
	"github.com/spf13/cobra"
)

func init() { register(newInitCmd) }

// initResult is what `gantry init --json` prints.
type initResult struct {
	*scaffold.Detection
	File    string `json:"file"`
	Written bool   `json:"written"`
}

func newInitCmd(m *Main) *cobra.Command {
	var docker, print bool
	var registry string
	cmd := &cobra.Command{
		Use:   "init [DIR] [--app NAME] [--docker] [--registry HOST:PORT/PATH] [--print]",
		Short: "Write a first gantry.yml for the repository in DIR (default .), from what it finds there",
		Long: `Look at the repository in DIR (default the current directory) and write a
gantry.yml, with a comment on each key, that passes gantry manifest check. It
knows Go (go.mod), Node.js (package.json with a start script), Python
(requirements.txt or pyproject.toml with a WSGI/ASGI app or a Procfile), Ruby
(Gemfile with config.ru), a Dockerfile and a Procfile, whose process types
become services.

It never overwrites an existing gantry.yml: it exits 3 and says so; --print
shows what it would write instead. --app names the app (default: DIR's name);
--docker builds the Dockerfile even when a language is found. Gantry pushes
the images it builds to a registry and runs them by digest: --registry names
it for a Dockerfile app (runtime.registry of test and prod). With --json it
prints what it detected.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return gantry.Errorf(gantry.EINVALID, "directory %s: %v", dir, err)
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return gantry.Errorf(gantry.EINVALID, "%s is not a directory", dir)
			}
			file := filepath.Join(dir, "gantry.yml")
			if _, err := os.Stat(file); err == nil && !print {
				return gantry.Errorf(gantry.ECONFLICT, "%s already exists; gantry init never overwrites it (check it with `gantry manifest check %s`, or see what init would write with `gantry init %s --print`)", file, dir, dir)
			}
			d, err := scaffold.Detect(os.DirFS(abs), scaffold.Options{App: m.App, Dir: abs, PreferDocker: docker, Registry: registry})
			if err != nil {
				return err
			}
			if registry != "" && d.Driver != "docker" {
				return usagef("--registry is for an app built from its Dockerfile; this %s app runs as processes (--docker builds its Dockerfile instead)", d.Kind)
			}
			text := scaffold.Render(d)
			// The proposal is checked as `manifest check` would check it,
			// before anything is written.
			if _, err := manifest.Decode(file, text); err != nil {
				if registry != "" { // the one value init takes as given
					return usagef("--registry %s: %s", registry, gantry.ErrorMessage(err))
				}
				return gantry.Errorf(gantry.EINTERNAL, "the proposed manifest does not pass its own check: %v", err)
			}
			res := initResult{Detection: d, File: file}
			if print {
				return m.output(res, func(w io.Writer) { w.Write(text) })
			}
			if err := writeNew(file, text); err != nil {
				return err
			}
			res.Written = true
			return m.output(res, func(w io.Writer) { printInit(w, res, dir) })
		},
	}
	cmd.Flags().BoolVar(&docker, "docker", false, "build the Dockerfile (docker driver) even when a language is found")
	cmd.Flags().BoolVar(&print, "print", false, "print the proposed gantry.yml instead of writing it")
	cmd.Flags().StringVar(&registry, "registry", "", "for a Dockerfile app: the registry its images are pushed to, host:port/path (runtime.registry of test and prod)")
	return cmd
}

// writeNew writes a file that must not exist yet: O_EXCL, so that one
// created meanwhile is not overwritten either.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return gantry.Errorf(gantry.ECONFLICT, "%s already exists; gantry init never overwrites it", path)
	} else if err != nil {
		return gantry.Errorf(gantry.EINVALID, "write %s: %v", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func printInit(w io.Writer, res initResult, dir string) {
	fmt.Fprintf(w, "wrote %s for app %s (%s):\n", res.File, res.App, res.Kind)
	for _, s := range res.Services {
		kind := "worker"
		if s.HTTP {
			kind = "web"
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", s.Name, kind, s.Run)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "next: read it, commit it, then `gantry app add %s --repo %s` and `gantry deploy test --ref main --app %s`\n",
		res.App, strings.TrimSuffix(dir, "/"), res.App)
}
