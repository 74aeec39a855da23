package proxy

import (
	"os"
	"runtime/debug"
)

// RouterGCPercent is the garbage collector's target (GOGC) that
// UseRouterGC sets. The router's live heap is small (connections, routes,
// buffers) while each request leaves a few KiB of garbage, so at Go's
// default of 100 the collector runs often and each cycle's fixed cost
// (roots, stacks of every connection's goroutine, the worker taking the
// only P when pinned to one CPU) weighs per request. At 400 the heap may
// grow to five times the live heap instead of twice, and it runs a quarter
// as often. See bench/README.md (router) for the figures.
const RouterGCPercent = 400

// UseRouterGC sets the garbage collector of a process whose work is the
// router (gantry proxy run) to RouterGCPercent, unless the GOGC variable
// is set, which wins. It sets no memory limit: a limit below the live
// heap would make the collector run without pause; GOMEMLIMIT remains
// the operator's.
func UseRouterGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(RouterGCPercent)
}
