package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Log attribute keys.
const (
	logKeyOp    = "op"
	logKeyRoute = "route"
	logKeyError = "error"
)

type handler struct {
	router gantry.Router
	token  string
	log    *slog.Logger
}

// Handler serves the admin API on top of r. With a non-empty token every
// request must carry "Authorization: Bearer <token>" (for the TCP listener;
// on a unix socket, file permissions guard access and token may be empty).
// A nil logger discards.
func Handler(r gantry.Router, token string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{router: r, token: token, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathDeploy, h.deploy)
	mux.HandleFunc("POST "+PathRollback, h.rollback)
	mux.HandleFunc("POST "+PathPreview, h.preview)
	mux.HandleFunc("POST "+PathPause, h.pause)
	mux.HandleFunc("POST "+PathResume, h.resume)
	mux.HandleFunc("POST "+PathMaintenance, h.maintenance)
	mux.HandleFunc("POST "+PathRemove, h.remove)
	mux.HandleFunc("GET "+PathStatus, h.status)
	mux.HandleFunc("POST "+PathCanary, h.setCanary)
	mux.HandleFunc("POST "+PathCanaryClear, h.clearCanary)
	mux.HandleFunc("POST "+PathCanaryStatus, h.canaryStatus)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		h.fail(w, req, gantry.Errorf(gantry.ENOTFOUND, "no endpoint %s %s", req.Method, req.URL.Path))
	})
	return h.authenticate(mux)
}

func (h *handler) authenticate(next http.Handler) http.Handler {
	if h.token == "" {
		return next
	}
	want := []byte("Bearer " + h.token)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got := []byte(req.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gantry-proxy"`)
			h.fail(w, req, gantry.Errorf(gantry.EUNAUTHORIZED, "missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, req)
	})
}

func (h *handler) deploy(w http.ResponseWriter, req *http.Request) {
	var in DeployRequest
	if !h.decode(w, req, &in) {
		return
	}
	res, err := h.router.Deploy(req.Context(), in.Route, in.Targets)
	h.reply(w, req, in.Route.Name, res, err)
}

func (h *handler) rollback(w http.ResponseWriter, req *http.Request) {
	var in NameRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	res, err := h.router.Rollback(req.Context(), in.Name)
	h.reply(w, req, in.Name, res, err)
}

func (h *handler) preview(w http.ResponseWriter, req *http.Request) {
	var in PreviewRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	err := h.router.SetPreview(req.Context(), in.Name, in.Targets)
	h.reply(w, req, in.Name, nil, err)
}

func (h *handler) pause(w http.ResponseWriter, req *http.Request) {
	var in PauseRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	err := h.router.Pause(req.Context(), in.Name, in.WritesOnly)
	h.reply(w, req, in.Name, nil, err)
}

func (h *handler) resume(w http.ResponseWriter, req *http.Request) {
	var in NameRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	err := h.router.Resume(req.Context(), in.Name)
	h.reply(w, req, in.Name, nil, err)
}

func (h *handler) maintenance(w http.ResponseWriter, req *http.Request) {
	var in MaintenanceRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	err := h.router.Maintenance(req.Context(), in.Name, in.On, in.Message)
	h.reply(w, req, in.Name, nil, err)
}

func (h *handler) remove(w http.ResponseWriter, req *http.Request) {
	var in NameRequest
	if !h.decode(w, req, &in) || !h.named(w, req, in.Name) {
		return
	}
	err := h.router.RemoveRoute(req.Context(), in.Name)
	h.reply(w, req, in.Name, nil, err)
}

func (h *handler) status(w http.ResponseWriter, req *http.Request) {
	routes, err := h.router.Status(req.Context())
	if routes == nil {
		routes = []gantry.RouteStatus{}
	}
	h.reply(w, req, "", StatusResponse{Routes: routes}, err)
}

// decode reads a JSON body strictly: one object, no unknown fields, within
// MaxRequestBytes. On failure it answers and returns false.
func (h *handler) decode(w http.ResponseWriter, req *http.Request, v any) bool {
	if ct := req.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		h.fail(w, req, gantry.Errorf(gantry.EINVALID, "content type %q: want application/json", ct))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, MaxRequestBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, req, gantry.Errorf(gantry.EINVALID, "request body larger than %d bytes", MaxRequestBytes))
			return false
		}
		h.fail(w, req, gantry.Errorf(gantry.EINVALID, "bad request body: %v", err))
		return false
	}
	return true
}

func (h *handler) named(w http.ResponseWriter, req *http.Request, name string) bool {
	if name == "" {
		h.fail(w, req, gantry.Errorf(gantry.EINVALID, `"name" is required`))
		return false
	}
	return true
}

// reply answers v, or err. Changes are logged: they are the proxy's audit trail.
func (h *handler) reply(w http.ResponseWriter, req *http.Request, route string, v any, err error) {
	if err != nil {
		h.fail(w, req, err)
		return
	}
	if req.Method != http.MethodGet {
		h.log.Info("admin", logKeyOp, req.URL.Path, logKeyRoute, route)
	}
	if v == nil {
		v = struct{}{}
	}
	writeJSON(w, http.StatusOK, v)
}

// fail answers err as JSON. The message of an internal error is replaced by
// "internal error" and the detail goes to the log only.
func (h *handler) fail(w http.ResponseWriter, req *http.Request, err error) {
	code := gantry.ErrorCode(err)
	if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
		// The caller went away; nobody reads the answer.
		code = gantry.EUNAVAILABLE
	}
	if code == gantry.EINTERNAL {
		h.log.Error("admin", logKeyOp, req.URL.Path, logKeyError, err.Error())
	} else {
		h.log.Warn("admin", logKeyOp, req.URL.Path, logKeyError, gantry.ErrorMessage(err))
	}
	msg := gantry.ErrorMessage(err)
	if code == gantry.EUNAVAILABLE && gantry.ErrorCode(err) == gantry.EINTERNAL {
		msg = "request cancelled"
	}
	writeJSON(w, gantry.HTTPStatus(code), ErrorResponse{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
