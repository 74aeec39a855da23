package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/spf13/cobra"
)

func init() { register(newManifestCmd) }

func newManifestCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Work with gantry.yml",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newManifestCheckCmd(m), newManifestShowCmd(m))
	return cmd
}

// readManifest reads PATH (a file, or a directory holding gantry.yml;
// default ./gantry.yml) and returns the path it read and the bytes.
func readManifest(args []string) (string, []byte, error) {
	path := "gantry.yml"
	if len(args) == 1 {
		path = args[0]
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "gantry.yml")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, gantry.Errorf(gantry.ENOTFOUND, "no manifest at %s", path)
	} else if err != nil {
		return "", nil, gantry.Errorf(gantry.EINVALID, "read manifest: %v", err)
	}
	return path, data, nil
}

func newManifestShowCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "show [PATH]",
		Short: "Print the effective gantry.yml, with every default written out",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, data, err := readManifest(args)
			if err != nil {
				return err
			}
			mf, err := manifest.Decode(path, data)
			if err != nil {
				return err // the problem list is the coded error's message
			}
			out, err := manifest.Encode(mf)
			if err != nil {
				return err
			}
			return m.output(mf, func(w io.Writer) { _, _ = w.Write(out) })
		},
	}
}

// manifestCheckResult is what `manifest check --json` prints; scripts rely on it.
type manifestCheckResult struct {
	OK           bool               `json:"ok"`
	File         string             `json:"file"`
	App          string             `json:"app,omitempty"`
	Services     int                `json:"services"`
	Environments int                `json:"environments"`
	Problems     []manifest.Problem `json:"problems"`
	Manifest     *gantry.Manifest   `json:"manifest,omitempty"`
}

func newManifestCheckCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "check [PATH]",
		Short: "Validate a gantry.yml without a server (default ./gantry.yml)",
		Long: "Validate a gantry.yml without a server. PATH is the file, or a directory holding gantry.yml;\n" +
			"the default is ./gantry.yml. Prints every problem as file:line:column: key: message and exits 2\n" +
			"when there is any. See docs/manifest.md for the reference.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, data, err := readManifest(args)
			if err != nil {
				return err
			}
			res := manifestCheckResult{File: path, Problems: []manifest.Problem{}}
			mf, err := manifest.Decode(path, data)
			var merr *manifest.Error
			switch {
			case errors.As(err, &merr):
				res.Problems = merr.Problems
			case err != nil:
				return err
			default:
				res.OK, res.App, res.Manifest = true, mf.App, mf
				res.Services, res.Environments = len(mf.Services), len(mf.Environments)
			}
			if err := m.output(res, func(w io.Writer) {
				if res.OK {
					fmt.Fprintf(w, "ok: %s, %s, %s\n", res.App, manifestCount(res.Services, "service"), manifestCount(res.Environments, "environment"))
					return
				}
				for _, p := range res.Problems {
					fmt.Fprintln(w, p.String())
				}
			}); err != nil {
				return err
			}
			if !res.OK {
				return gantry.Errorf(gantry.EINVALID, "%s: %s", path, manifestCount(len(res.Problems), "problem"))
			}
			return nil
		},
	}
}

func manifestCount(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
