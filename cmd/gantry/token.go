package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/gantry-dev/gantry/api"
	"github.com/spf13/cobra"
)

func init() { register(newTokenCmd) }

func newTokenCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
	}
	var role string
	var envs []string
	create := &cobra.Command{
		Use:   "create NAME --role viewer|deployer|approver|admin [--env E]...",
		Short: "Create a token and print its secret, once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role == "" {
				return usagef("token create: --role is required (viewer, deployer, approver or admin)")
			}
			t, err := m.client().CreateToken(cmd.Context(), api.CreateTokenRequest{Name: args[0], Role: role, Envs: envs})
			if err != nil {
				return err
			}
			return m.output(t, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", t.Secret)
				fmt.Fprintf(m.Stderr, "token %s (%s) created; the secret above is shown only this once\n", t.Name, grant(t.Role, t.Envs))
			})
		},
	}
	create.Flags().StringVar(&role, "role", "", "viewer, deployer, approver or admin")
	create.Flags().StringArrayVar(&envs, "env", nil, "limit the grant to this environment (repeatable; default all)")
	cmd.AddCommand(create)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := m.client().ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			return m.output(ts, func(w io.Writer) {
				fmt.Fprintf(w, "%-20s %-28s %-12s %s\n", "NAME", "GRANT", "CREATED BY", "CREATED")
				for _, t := range ts {
					fmt.Fprintf(w, "%-20s %-28s %-12s %s\n", t.Name, grant(t.Role, t.Envs), t.CreatedBy, t.CreatedAt.Local().Format("2006-01-02 15:04"))
				}
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := m.client().RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			return m.output(map[string]string{"name": args[0], "status": "revoked"}, func(w io.Writer) {
				fmt.Fprintf(w, "token %s revoked\n", args[0])
			})
		},
	})
	return cmd
}

func grant(role string, envs []string) string {
	if len(envs) == 0 {
		return role
	}
	return role + " for " + strings.Join(envs, ", ")
}
