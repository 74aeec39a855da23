package main

import (
	"github.com/gantry-dev/gantry/internal/httplimit"
	"github.com/spf13/cobra"
)

// addLimitFlags registers, on `gantry server` and `gantry proxy run`, the
// flags that bound what a slow or idle client may hold of a public
// listener; what names the listeners they apply to.
func addLimitFlags(cmd *cobra.Command, l *httplimit.Limits, what string) {
	f := cmd.Flags()
	f.DurationVar(&l.ReadHeaderTimeout, "read-header-timeout", httplimit.DefaultReadHeaderTimeout,
		"how long a client of "+what+" may take to send a request's headers")
	f.DurationVar(&l.IdleTimeout, "idle-timeout", httplimit.DefaultIdleTimeout,
		"how long an idle keep-alive connection to "+what+" stays open")
	f.DurationVar(&l.BodyTimeout, "body-timeout", httplimit.DefaultBodyTimeout,
		"a request body sent to "+what+" must deliver --body-min-rate × this much in every such period, or its connection is closed (uploads that keep moving are never cut)")
	f.Int64Var(&l.BodyMinRate, "body-min-rate", httplimit.DefaultBodyMinRate,
		"minimum rate of a request body, in bytes per second (see --body-timeout)")
	f.IntVar(&l.MaxHeaderBytes, "max-header-bytes", httplimit.DefaultMaxHeaderBytes,
		"largest request line and headers "+what+" accepts, in bytes")
}

// checkLimits refuses limits that would disable a bound: each must be positive.
func checkLimits(l httplimit.Limits) error {
	switch {
	case l.ReadHeaderTimeout <= 0:
		return usagef("--read-header-timeout %s: want a positive duration", l.ReadHeaderTimeout)
	case l.IdleTimeout <= 0:
		return usagef("--idle-timeout %s: want a positive duration", l.IdleTimeout)
	case l.BodyTimeout <= 0:
		return usagef("--body-timeout %s: want a positive duration", l.BodyTimeout)
	case l.BodyMinRate <= 0:
		return usagef("--body-min-rate %d: want a positive number of bytes per second", l.BodyMinRate)
	case l.MaxHeaderBytes < 1024:
		return usagef("--max-header-bytes %d: want at least 1024", l.MaxHeaderBytes)
	}
	return nil
}
