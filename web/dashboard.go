// Package web is Gantry's dashboard: server-rendered pages (html/template,
// assets embedded in the binary, no CDN) that work without JavaScript, with
// live updates over server-sent events where they help.
//
// It reads and acts only through the API handler it is given, as the
// signed-in user, so that it has exactly the API's permissions and audit
// trail and never a second copy of a rule. It must not reach the store, the
// orchestrator or the router itself (the token store only, to sign in), and
// it never shows a secret's value: the API does not hand one out.
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Dashboard serves the web pages.
type Dashboard struct {
	// API is the API's handler; the dashboard calls it in-process.
	API http.Handler
	// Tokens checks the token given at sign-in, and again at every request
	// so that a revoked token ends its sessions.
	Tokens gantry.TokenStore
	Logger *slog.Logger
	Now    func() time.Time
	// Secure marks cookies Secure even on plain HTTP (behind a TLS proxy);
	// a request that came over TLS always gets them.
	Secure bool
	// PollInterval is how often a live page looks for changes (default 300ms).
	PollInterval time.Duration
	// SessionTTL bounds a session (default 12h).
	SessionTTL time.Duration

	once     sync.Once
	pages    map[string]*template.Template
	sessions sessions
	closed   chan struct{}
	closeMu  sync.Once
}

func (d *Dashboard) init() {
	d.once.Do(func() {
		d.pages = parsePages()
		d.sessions.m = map[string]*session{}
		d.closed = make(chan struct{})
		if d.Logger == nil {
			d.Logger = slog.New(slog.DiscardHandler)
		}
		if d.Now == nil {
			d.Now = time.Now
		}
		if d.PollInterval <= 0 {
			d.PollInterval = 300 * time.Millisecond
		}
		if d.SessionTTL <= 0 {
			d.SessionTTL = 12 * time.Hour
		}
	})
}

// Close ends the live streams, so that the HTTP server can shut down.
func (d *Dashboard) Close() {
	d.init()
	d.closeMu.Do(func() { close(d.closed) })
}

// Handler returns the dashboard's routes. Mount it at "/" beside the API
// at "/v1/".
func (d *Dashboard) Handler() http.Handler {
	d.init()
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", withCache(http.FileServerFS(static))))
	mux.HandleFunc("GET /signin", d.signinPage)
	mux.HandleFunc("POST /signin", d.signin)
	mux.HandleFunc("POST /signout", d.signout)
	mux.HandleFunc("GET /{$}", d.auth(d.overview))
	mux.HandleFunc("GET /routers", d.auth(d.routers))
	mux.HandleFunc("GET /apps/{app}/releases", d.auth(d.releases))
	mux.HandleFunc("GET /apps/{app}/releases/{id}", d.auth(d.release))
	mux.HandleFunc("GET /apps/{app}/deployments", d.auth(d.deployments))
	mux.HandleFunc("GET /apps/{app}/deployments/{id}", d.auth(d.deployment))
	mux.HandleFunc("GET /apps/{app}/deployments/{id}/events", d.auth(d.deploymentEvents))
	mux.HandleFunc("GET /apps/{app}/diff", d.auth(d.diff))
	mux.HandleFunc("GET /apps/{app}/metrics", d.auth(d.metrics))
	mux.HandleFunc("GET /apps/{app}/hooks", d.auth(d.hooks))
	mux.HandleFunc("GET /apps/{app}/actions/{action}", d.auth(d.confirm))
	mux.HandleFunc("POST /apps/{app}/actions/{action}", d.auth(d.act))
	return withSecurityHeaders(mux)
}

// withSecurityHeaders forbids framing and inline scripts from elsewhere:
// the pages load only their own assets.
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func withCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title string
	User  *gantry.Identity
	CSRF  string
	Apps  []*gantry.App
	App   string
	Nav   string
	Error string
	Flash string
	Data  any
}

func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p page) {
	t, ok := d.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		d.Logger.Error("render page", "page", name, "error", err)
	}
}

// fail renders an error page with the status the error's code maps to.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	code := gantry.ErrorCode(err)
	if code == gantry.EINTERNAL {
		d.Logger.Error("dashboard", "path", r.URL.Path, "error", err)
	}
	d.render(w, gantry.HTTPStatus(code), "error.html", rq.page("Error", gantry.ErrorMessage(err), nil))
}
