package proxy

import (
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// Retry-After values, in seconds, sent with the gate's 503 answers.
const (
	maintenanceRetryAfter = 30
	pauseRetryAfter       = 5
)

// WithGateMiddleware applies a route's maintenance and pause state before a
// request reaches a target: in maintenance it answers the 503 page; when
// paused it holds the request until Resume, or answers 503 with Retry-After
// once the queue or the pause timeout is exceeded.
func WithGateMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rs := requestStateFrom(req.Context())
		if rs == nil {
			next.ServeHTTP(w, req)
			return
		}
		rt := rs.route
		if m := rt.maint.Load(); m != nil {
			writeMaintenance(w, req, m.message)
			return
		}
		write := !safeMethod(req.Method)
		// Count before looking at the gate: a Pause that stores its gate
		// after this sees the count and waits for the request to finish.
		rt.enter(write)
		defer rt.leave(write)
		if g := rt.pause.Load(); g != nil && (write || !g.writesOnly.Load()) {
			rt.leave(write)
			cfg := rt.cfg.Load()
			res := g.hold(req.Context(), cfg.PauseQueue, cfg.PauseTimeout)
			rt.enter(write)
			switch res {
			case holdReleased:
			case holdGone:
				return
			default:
				w.Header().Set("Retry-After", strconv.Itoa(pauseRetryAfter))
				plainError(w, http.StatusServiceUnavailable, "service paused, retry shortly")
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// maintenance is a route's maintenance state; it is immutable.
type maintenance struct {
	message string
}

const defaultMaintenanceMessage = "This service is down for maintenance. Please try again shortly."

// writeMaintenance answers 503 with an HTML page, or JSON when the client
// asks for it. The message is the operator's, but still escaped.
func writeMaintenance(w http.ResponseWriter, req *http.Request, msg string) {
	if msg == "" {
		msg = defaultMaintenanceMessage
	}
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(maintenanceRetryAfter))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if wantsJSON(req.Header.Get("Accept")) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "maintenance", "message": msg})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	m := html.EscapeString(msg)
	_, _ = w.Write([]byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>\n" +
		"<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>Down for maintenance</h1>\n<p>" + m + "</p></body></html>\n"))
}

// wantsJSON is deliberately simple: any JSON media type in Accept that comes
// before (or without) text/html.
func wantsJSON(accept string) bool {
	j := strings.Index(accept, "json")
	if j < 0 {
		return false
	}
	h := strings.Index(accept, "text/html")
	return h < 0 || j < h
}
