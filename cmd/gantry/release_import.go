package main

import (
	"io"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"github.com/spf13/cobra"

	"github.com/gantry-dev/gantry/api"
)

// `release import` is a verb of the release command (release.go), kept in a
// file of its own: it joins that command when the root command is built.
func init() {
	for i, f := range commands {
		commands[i] = func(m *Main) *cobra.Command {
			cmd := f(m)
			if cmd.Name() == "release" {
				cmd.AddCommand(newReleaseImportCmd(m))
			}
			return cmd
		}
	}
}

func newReleaseImportCmd(m *Main) *cobra.Command {
	var (
		services []string
		req      api.ImportRequest
	)
	cmd := &cobra.Command{
		Use:   "import --service NAME=REPO@sha256:DIGEST [--service …] --version V --commit SHA",
		Short: "Register images built by an outside CI as a release, by digest",
		Long: `Register images built elsewhere (an outside CI) as a release. Each service
names its image by digest, never by tag, so that what is deployed and promoted
is exactly what was built. The commit's gantry.yml becomes the release's manifest.`,
		Example: "  gantry release import --service web=registry.example/shop/web@sha256:4f1c… --version 3.0.4 --commit 1a2b3c4",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			images, err := parseImportServices(services)
			if err != nil {
				return err
			}
			if err := checkImportFlags(req.Version, req.Commit); err != nil {
				return err
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			req.App, req.Images = app, images
			rel, err := c.ImportRelease(cmd.Context(), req)
			if err != nil {
				return err
			}
			return m.output(rel, func(w io.Writer) { printRelease(w, rel) })
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&services, "service", nil, "NAME=REPOSITORY@sha256:DIGEST, once per service")
	f.StringVar(&req.Version, "version", "", "the release's version")
	f.StringVar(&req.Commit, "commit", "", "the commit the images were built from")
	f.StringVar(&req.Ref, "ref", "", "the branch or tag the commit was built from (recorded only)")
	return cmd
}

var (
	importImage  = lazyre.New(`^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[a-f0-9]{64}$`)
	importCommit = lazyre.New(`^[0-9a-f]{7,64}$`)
)

// parseImportServices reads the --service flags: service → image by digest.
func parseImportServices(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, usagef("release import: at least one --service NAME=REPOSITORY@sha256:DIGEST is required")
	}
	images := map[string]string{}
	for _, s := range flags {
		name, ref, ok := strings.Cut(s, "=")
		switch {
		case !ok || gantry.ValidName("service", name) != nil:
			return nil, usagef("release import: --service %q: want NAME=REPOSITORY@sha256:DIGEST with a service name of lowercase letters, digits and -", s)
		case images[name] != "":
			return nil, usagef("release import: service %s is given twice", name)
		case !importImage.MatchString(ref):
			why := "want REGISTRY/REPOSITORY@sha256:<64 hex digits>"
			if !strings.Contains(ref, "@") {
				why = "images are imported by digest, never by tag: " + why
			}
			return nil, usagef("release import: --service %s: image %q: %s", name, ref, why)
		}
		images[name] = ref
	}
	return images, nil
}

func checkImportFlags(version, commit string) error {
	switch {
	case strings.TrimSpace(version) == "" && commit == "":
		return usagef("release import: --version and --commit are required")
	case strings.TrimSpace(version) == "":
		return usagef("release import: --version is required")
	case commit == "":
		return usagef("release import: --commit is required")
	case !importCommit.MatchString(commit):
		return usagef("release import: --commit %q is not a commit id (7 to 64 lowercase hex digits)", commit)
	}
	return nil
}
