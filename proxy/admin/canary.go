package admin

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// The canary endpoints, served when the proxy's router can split traffic.
const (
	PathCanary       = "/v1/canary"
	PathCanaryClear  = "/v1/canary/clear"
	PathCanaryStatus = "/v1/canary/status"
)

// CanaryRequest is the body of POST /v1/canary.
type CanaryRequest struct {
	Name  string             `json:"name"`
	Split gantry.CanarySplit `json:"split"`
}

var _ gantry.CanaryRouter = (*Client)(nil)

func (h *handler) canaryRouter(w http.ResponseWriter, req *http.Request) (gantry.CanaryRouter, bool) {
	cr, ok := h.router.(gantry.CanaryRouter)
	if !ok {
		h.fail(w, req, gantry.Errorf(gantry.EINVALID, "this proxy cannot split traffic"))
	}
	return cr, ok
}

func (h *handler) setCanary(w http.ResponseWriter, req *http.Request) {
	var in CanaryRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	if cr, ok := h.canaryRouter(w, req); ok {
		h.reply(w, req, in.Name, nil, cr.SetCanary(req.Context(), in.Name, in.Split))
	}
}

func (h *handler) clearCanary(w http.ResponseWriter, req *http.Request) {
	var in NameRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	if cr, ok := h.canaryRouter(w, req); ok {
		h.reply(w, req, in.Name, nil, cr.ClearCanary(req.Context(), in.Name))
	}
}

// canaryStatus is a POST: route names hold a slash, so they travel in the
// body, and the call changes nothing.
func (h *handler) canaryStatus(w http.ResponseWriter, req *http.Request) {
	var in NameRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	if cr, ok := h.canaryRouter(w, req); ok {
		st, err := cr.CanaryStatus(req.Context(), in.Name)
		h.reply(w, req, "", st, err)
	}
}

// SetCanary starts or changes the split of a route on the proxy.
func (c *Client) SetCanary(ctx context.Context, name string, split gantry.CanarySplit) error {
	return c.call(ctx, http.MethodPost, PathCanary, CanaryRequest{Name: name, Split: split}, nil)
}

// ClearCanary ends a route's split on the proxy.
func (c *Client) ClearCanary(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, PathCanaryClear, NameRequest{Name: name}, nil)
}

// CanaryStatus reports a route's split and its figures.
func (c *Client) CanaryStatus(ctx context.Context, name string) (*gantry.CanaryStatus, error) {
	var st gantry.CanaryStatus
	if err := c.call(ctx, http.MethodPost, PathCanaryStatus, NameRequest{Name: name}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
