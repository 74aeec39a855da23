package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() {
	register(newLockCmd)
	register(newUnlockCmd)
}

func newLockCmd(m *Main) *cobra.Command {
	var reason, ttl string
	cmd := &cobra.Command{
		Use:   "lock ENV --reason R [--ttl D]",
		Short: "Lock an environment: deploys, promotions and rollbacks are refused until unlocked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("lock: --reason is required")
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			l, err := c.Lock(cmd.Context(), app, args[0], reason, ttl)
			if err != nil {
				return err
			}
			return m.output(l, func(w io.Writer) {
				until := ""
				if !l.Expires.IsZero() {
					until = " until " + l.Expires.Local().Format("15:04:05")
				}
				fmt.Fprintf(w, "%s locked by %s%s: %s\n", args[0], l.Holder, until, l.Reason)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the environment is locked (shown to whoever is refused)")
	cmd.Flags().StringVar(&ttl, "ttl", "", "unlock automatically after this duration (e.g. 2h)")
	return cmd
}

func newUnlockCmd(m *Main) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock ENV [--force]",
		Short: "Release an environment's lock (another holder's only with --force; never a running deployment's: see cancel)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			if err := c.Unlock(cmd.Context(), app, args[0], force); err != nil {
				return err
			}
			return m.output(map[string]string{"env": args[0], "status": "unlocked"}, func(w io.Writer) { fmt.Fprintf(w, "%s unlocked\n", args[0]) })
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "release a lock held by someone else, or left by a deployment that has ended")
	return cmd
}
