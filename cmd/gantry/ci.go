package main

import (
	"fmt"
	"io"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/trigger"
	"github.com/spf13/cobra"
)

func init() { register(newCICmd) }

// ciSetup is what `gantry ci` prints for one forge: how to point its
// webhook at the server, and the CI job that drives Gantry instead when
// the forge's CI should be the one to decide.
type ciSetup struct {
	Forge   string   `json:"forge"`
	App     string   `json:"app"`
	Webhook []string `json:"webhook"`
	CIFile  string   `json:"ci_file"`
	CI      string   `json:"ci"`
}

func ciFor(forge, app, server string) (*ciSetup, error) {
	url := server + trigger.HookPath(app, forge)
	add := fmt.Sprintf("gantry hook add %s --app %s", forge, app)
	// deploy --ref builds the commit (or reuses its release) and deploys it.
	job := func(indent string) string { return indent + "gantry deploy test --app " + app + " --ref \"$COMMIT\"" }
	switch forge {
	case gantry.ForgeGitHub:
		return &ciSetup{Forge: forge, App: app, Webhook: []string{
			"1. On the server: " + add + " (prints the secret once; --role admin to allow previews)",
			"2. Repository → Settings → Webhooks → Add webhook",
			"   Payload URL:  " + url,
			"   Content type: application/json",
			"   Secret:       the secret from step 1",
			"   Events:       Pushes and Pull requests",
			"3. Commit statuses with the preview's URL: add --api-token-stdin with a token that may write commit statuses",
		}, CIFile: ".github/workflows/gantry.yml", CI: actionsWorkflow(job)}, nil
	case gantry.ForgeGitLab:
		return &ciSetup{Forge: forge, App: app, Webhook: []string{
			"1. On the server: " + add + " (prints the secret once; --role admin to allow previews)",
			"2. Project → Settings → Webhooks → Add new webhook",
			"   URL:          " + url,
			"   Secret token: the secret from step 1 (GitLab sends it as X-Gitlab-Token)",
			"   Trigger:      Push events and Merge request events",
			"3. Commit statuses with the preview's URL: add --api-token-stdin with a token of scope api",
		}, CIFile: ".gitlab-ci.yml", CI: `gantry-deploy:
  stage: deploy
  rules:
    - if: '$CI_COMMIT_BRANCH =~ /^releases\//'
  variables:
    COMMIT: $CI_COMMIT_SHA
  script:
` + job("    - ") + "\n"}, nil
	case gantry.ForgeGitea:
		return &ciSetup{Forge: forge, App: app, Webhook: []string{
			"1. On the server: " + add + " (prints the secret once; --role admin to allow previews)",
			"2. Repository → Settings → Webhooks → Add webhook → Gitea (Forgejo: Forgejo)",
			"   Target URL:   " + url,
			"   HTTP method:  POST, content type application/json",
			"   Secret:       the secret from step 1",
			"   Trigger on:   Push events, Delete events and Pull request events",
			"3. Commit statuses with the preview's URL: add --api-token-stdin with a token that may write repositories",
		}, CIFile: ".gitea/workflows/gantry.yml (Forgejo: .forgejo/workflows/gantry.yml)", CI: actionsWorkflow(job)}, nil
	}
	return nil, usagef("ci: unknown forge %q: want github, gitlab or gitea", forge)
}

func newCICmd(m *Main) *cobra.Command {
	var publicURL string
	cmd := &cobra.Command{
		Use:   "ci github|gitlab|gitea APP",
		Short: "Print how to connect a forge to the server: its webhook's settings, and a CI job that drives Gantry",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := gantry.ValidName("app", args[1]); err != nil {
				return err
			}
			s, err := ciFor(args[0], args[1], m.publicServer(cmd.Context(), publicURL))
			if err != nil {
				return err
			}
			return m.output(s, func(w io.Writer) {
				fmt.Fprintf(w, "# Webhook: the server acts on pushes and merge requests (the manifest's triggers say how)\n")
				for _, l := range s.Webhook {
					fmt.Fprintln(w, l)
				}
				fmt.Fprintf(w, "\n# Or let CI drive Gantry: %s (GANTRY_SERVER and GANTRY_TOKEN as CI secrets; gantry token create ci --role deployer --env test)\n", s.CIFile)
				fmt.Fprint(w, s.CI)
			})
		},
	}
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the server's address as the forge reaches it (default --server when it is http(s))")
	return cmd
}

// actionsWorkflow is the CI job for GitHub Actions and for Gitea's and
// Forgejo's Actions, which read the same workflow files.
func actionsWorkflow(job func(indent string) string) string {
	return `name: gantry
on:
  push:
    branches: ["releases/*"]
jobs:
  deploy:
    runs-on: ubuntu-latest
    env:
      GANTRY_SERVER: ${{ secrets.GANTRY_SERVER }}
      GANTRY_TOKEN: ${{ secrets.GANTRY_TOKEN }}
      COMMIT: ${{ github.sha }}
    steps:
      - run: |
` + job("          ") + "\n"
}
