package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newHookCmd) }

// publicServer is where a forge reaches the server: --public-url, else the
// --server (or $GANTRY_SERVER) address when it is HTTP, else the address
// the server reports (the CLI is on its unix socket), else the default.
func (m *Main) publicServer(ctx context.Context, flag string) string {
	if flag != "" {
		return strings.TrimRight(flag, "/")
	}
	for _, s := range []string{m.Server, m.Getenv("GANTRY_SERVER")} {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			return strings.TrimRight(s, "/")
		}
	}
	// On the unix socket: the address the server listens on (or
	// advertises), as it says itself.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if u, err := m.client().ServerURL(ctx); err == nil && u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://127.0.0.1:7878"
}

func newHookCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Add, list and remove an app's forge webhooks (GitHub, GitLab, Gitea/Forgejo) and its repository poller",
	}
	var req api.AddHookRequest
	var tokenStdin bool
	var publicURL string
	add := &cobra.Command{
		Use:   "add github|gitlab|gitea|poll [--role deployer] [--env E]... [--api-url URL --api-token-stdin] [--poll 1m]",
		Short: "Add a hook: it runs as a token of its own; prints the payload URL and the webhook secret, once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Forge = args[0]
			if tokenStdin {
				b, err := io.ReadAll(io.LimitReader(m.Stdin, 1<<16))
				if err != nil {
					return err
				}
				if req.APIToken = strings.TrimSpace(string(b)); req.APIToken == "" {
					return usagef("hook add: --api-token-stdin: pipe the forge API token on stdin")
				}
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			h, err := c.AddHook(cmd.Context(), app, req)
			if err != nil {
				return err
			}
			payload := ""
			if h.Path != "" {
				payload = m.publicServer(cmd.Context(), publicURL) + h.Path
			}
			out := struct {
				*gantry.AddedHook
				URL string `json:"url,omitempty"`
			}{h, payload}
			return m.output(out, func(w io.Writer) {
				fmt.Fprintf(w, "hook %s added to app %s; it runs as token %s\n", h.Forge, h.App, h.Token)
				if h.Forge == gantry.ForgePoll {
					fmt.Fprintf(w, "the server lists the repository's branches every %s\n", h.Poll)
					return
				}
				fmt.Fprintf(w, "payload URL: %s\n", payload)
				fmt.Fprintf(w, "secret:      %s\n", h.Secret)
				fmt.Fprintf(m.Stderr, "the secret is shown only this once; `gantry ci %s %s` shows how to set the webhook up\n", h.Forge, h.App)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&req.Role, "role", "deployer", "role of the hook's token: deployer builds and deploys; previews need admin")
	f.StringArrayVar(&req.Envs, "env", nil, "limit the hook's token to this environment (repeatable; default all)")
	f.StringVar(&req.APIURL, "api-url", "", "forge API for commit statuses (default https://api.github.com, or the repository's server /api/v4 (GitLab), /api/v1 (Gitea))")
	f.BoolVar(&tokenStdin, "api-token-stdin", false, "read a forge API token from stdin, to post commit statuses with the preview's URL")
	f.StringVar(&req.Poll, "poll", "", "with poll: how often the repository is listed, e.g. 1m")
	f.StringVar(&publicURL, "public-url", "", "the server's address as the forge reaches it (default --server when it is http(s))")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the app's hooks (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			hs, err := c.ListHooks(cmd.Context(), app)
			if err != nil {
				return err
			}
			return m.output(hs, func(w io.Writer) {
				fmt.Fprintf(w, "%-8s %-28s %-8s %s\n", "FORGE", "TOKEN", "STATUSES", "CREATED")
				for _, h := range hs {
					st := "no"
					if h.StatusToken {
						st = "yes"
					}
					fmt.Fprintf(w, "%-8s %-28s %-8s %s\n", h.Forge, h.Token, st, h.CreatedAt.Local().Format("2006-01-02 15:04"))
				}
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove FORGE",
		Short: "Remove a hook and revoke its token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			if err := c.RemoveHook(cmd.Context(), app, args[0]); err != nil {
				return err
			}
			return m.output(map[string]string{"app": app, "forge": args[0], "status": "removed"}, func(w io.Writer) {
				fmt.Fprintf(w, "hook %s of app %s removed; its token is revoked\n", args[0], app)
			})
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
