// Package admin is the control API of a standalone `gantry proxy`: an HTTP
// JSON API, over a unix socket by default, that exposes a gantry.Router, and
// the Go client that makes such a proxy a gantry.Router again for the
// control plane. With it the control plane can restart while the proxy
// keeps serving traffic.
//
// It must not know how routing works: it forwards calls to whatever
// gantry.Router it is given and translates errors. It must not hold state of
// its own; what the proxy persists is the caller's business.
package admin

import "github.com/gantry-dev/gantry"

// The endpoints. Route names contain a slash ("<app>/<env>"), so they
// travel in request bodies rather than in paths.
const (
	PathDeploy      = "/v1/deploy"
	PathRollback    = "/v1/rollback"
	PathPreview     = "/v1/preview"
	PathPause       = "/v1/pause"
	PathResume      = "/v1/resume"
	PathMaintenance = "/v1/maintenance"
	PathRemove      = "/v1/remove"
	PathStatus      = "/v1/status"
)

// MaxRequestBytes bounds an admin request body; a route with its targets is
// a few kilobytes.
const MaxRequestBytes = 1 << 20

// DeployRequest is the body of POST /v1/deploy.
type DeployRequest struct {
	Route   gantry.Route `json:"route"`
	Targets []string     `json:"targets"`
}

// NameRequest is the body of the calls that only name a route: rollback,
// resume and remove.
type NameRequest struct {
	Name string `json:"name"`
}

// PreviewRequest is the body of POST /v1/preview; no targets clears the preview.
type PreviewRequest struct {
	Name    string   `json:"name"`
	Targets []string `json:"targets"`
}

// PauseRequest is the body of POST /v1/pause.
type PauseRequest struct {
	Name       string `json:"name"`
	WritesOnly bool   `json:"writes_only"`
}

// MaintenanceRequest is the body of POST /v1/maintenance.
type MaintenanceRequest struct {
	Name    string `json:"name"`
	On      bool   `json:"on"`
	Message string `json:"message,omitempty"`
}

// StatusResponse is the answer of GET /v1/status.
type StatusResponse struct {
	Routes []gantry.RouteStatus `json:"routes"`
}

// ErrorResponse is the body of every failed call.
type ErrorResponse struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}
