// Package proxy is Gantry's traffic router: it maps a request's host (and
// optional path prefix) to a named route, and forwards it to one of the
// route's active targets. It owns everything that makes a switch safe:
// health-gated atomic switches, draining of the targets a switch leaves,
// instant rollback to the previous target set, preview hosts, pause and
// maintenance gates, request limits and metrics, and the per-target counts
// of requests, 5xx answers and latency that the control plane's post-switch
// watch reads through Status.
//
// It must not know about apps, releases, slots or drivers: the control plane
// tells it which host:port targets serve a route through the gantry.Router
// interface, and persists Snapshot() itself. It must not buffer request or
// response bodies (the one bounded exception: a request body whose length
// is known and at most 16 KiB is read whole so that it goes to the target
// with its head in one write), and it must never echo an unvalidated Host
// header.
//
// Forwarding has two paths: the fast path (fastpath.go, upstream.go) carries
// ordinary HTTP/1.1 exchanges on the target's pooled keep-alive connections
// from the handler's goroutine; upgrades (WebSocket), gRPC and other
// requests asking for trailers, Expect: 100-continue and large or unsized
// request bodies go through httputil.ReverseProxy (forward.go).
package proxy
