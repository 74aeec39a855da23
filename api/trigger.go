package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gantry-dev/gantry"
)

// triggerRoutes are the forges' webhook endpoint and the hooks' management.
// A delivery carries no token: it is authenticated by its forge's
// signature, then acts as its hook's own token (package trigger).
func (s *Server) triggerRoutes() []route {
	return []route{
		{"POST /v1/hooks/{app}/{forge}", "", s.deliver, nil},
		{"POST /v1/apps/{app}/hooks", PermAdmin, s.addHook, nil},
		{"GET /v1/apps/{app}/hooks", PermAdmin, s.listHooks, nil},
		{"DELETE /v1/apps/{app}/hooks/{forge}", PermAdmin, s.removeHook, nil},
	}
}

func (s *Server) triggers() (gantry.TriggerService, error) {
	if s.Triggers == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server does not take webhooks")
	}
	return s.Triggers, nil
}

// maxDelivery bounds a delivery's body. GitHub caps payloads at 25 MB,
// but a push's or merge request's is a few kilobytes unless it lists
// thousands of commits, of which Gantry reads none.
const maxDelivery = 5 << 20

func (s *Server) deliver(w http.ResponseWriter, r *http.Request) {
	ts, err := s.triggers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDelivery))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = gantry.Errorf(gantry.EINVALID, "delivery body is larger than %d bytes", maxDelivery)
		}
		s.fail(w, r, err)
		return
	}
	res, err := ts.Deliver(r.Context(), r.PathValue("app"), r.PathValue("forge"), r.Header, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if n := note(r); n != nil {
		n.actor = res.Actor
	}
	writeJSON(w, http.StatusAccepted, res)
}

// AddHookRequest is the body of hook add.
type AddHookRequest struct {
	Forge    string   `json:"forge"`
	Role     string   `json:"role,omitempty"`
	Envs     []string `json:"envs,omitempty"`
	APIURL   string   `json:"api_url,omitempty"`
	APIToken string   `json:"api_token,omitempty"`
	Poll     string   `json:"poll,omitempty"` // a duration: 1m
}

func (s *Server) addHook(w http.ResponseWriter, r *http.Request) {
	var body AddHookRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	ts, err := s.triggers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var poll time.Duration
	if body.Poll != "" {
		if poll, err = time.ParseDuration(body.Poll); err != nil {
			s.fail(w, r, gantry.Errorf(gantry.EINVALID, "poll %q: want a duration such as 1m", body.Poll))
			return
		}
	}
	h, err := ts.AddHook(r.Context(), gantry.AddHookRequest{App: r.PathValue("app"), Forge: body.Forge, Role: body.Role, Envs: body.Envs,
		APIURL: body.APIURL, APIToken: body.APIToken, Poll: poll, Actor: actor(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) {
	ts, err := s.triggers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hs, err := ts.ListHooks(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, h := range hs {
		if s.URL != "" && h.Forge != gantry.ForgePoll {
			h.URL = s.URL + "/v1/hooks/" + url.PathEscape(h.App) + "/" + url.PathEscape(h.Forge)
		}
	}
	writeJSON(w, http.StatusOK, hs)
}

func (s *Server) removeHook(w http.ResponseWriter, r *http.Request) {
	ts, err := s.triggers()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := ts.RemoveHook(r.Context(), r.PathValue("app"), r.PathValue("forge")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "removed"})
}

// AddHook makes a hook of app; the result carries its secret, shown once.
func (c *Client) AddHook(ctx context.Context, app string, req AddHookRequest) (*gantry.AddedHook, error) {
	var out gantry.AddedHook
	return &out, c.do(ctx, http.MethodPost, appPath(app)+"/hooks", req, &out)
}

// ListHooks lists app's hooks.
func (c *Client) ListHooks(ctx context.Context, app string) ([]*gantry.ForgeHook, error) {
	var out []*gantry.ForgeHook
	return out, c.do(ctx, http.MethodGet, appPath(app)+"/hooks", nil, &out)
}

// RemoveHook removes app's hook of forge and revokes its token.
func (c *Client) RemoveHook(ctx context.Context, app, forge string) error {
	return c.do(ctx, http.MethodDelete, appPath(app)+"/hooks/"+url.PathEscape(forge), nil, nil)
}
