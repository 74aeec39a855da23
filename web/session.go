package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

const (
	sessionCookie = "gantry_session"
	// signinCookie carries the sign-in form's CSRF token before there is a
	// session (double submit: cookie and form field must match).
	signinCookie = "gantry_signin"
)

// session is a signed-in browser. It keeps the token's hash, not the
// token, and looks the token up at every request.
type session struct {
	tokenHash string
	csrf      string
	expires   time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (d *Dashboard) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: d.Secure || r.TLS != nil,
	}
}

// request is a signed-in request: who, and the session's CSRF token.
type request struct {
	id   *gantry.Identity
	csrf string
	apps []*gantry.App
}

func (rq *request) page(title, errMsg string, data any) page {
	p := page{Title: title, Error: errMsg, Data: data}
	if rq != nil {
		p.User, p.CSRF, p.Apps = rq.id, rq.csrf, rq.apps
	}
	return p
}

// auth runs h for a signed-in user and sends anyone else to the sign-in
// form. POST requests must carry the session's CSRF token.
func (d *Dashboard) auth(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, ok := d.signedIn(r)
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.render(w, http.StatusUnauthorized, "signin.html", page{Title: "Sign in", Error: "Your session has ended: sign in again."})
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !sameToken(r.PostFormValue("csrf"), rq.csrf) {
				d.render(w, http.StatusForbidden, "error.html", rq.page("Refused", "The form is stale or came from another site (CSRF check failed): reload the page and try again.", nil))
				return
			}
		}
		if err := d.get(r.Context(), rq.id, "/v1/apps", &rq.apps); err != nil {
			d.fail(w, r, rq, err)
			return
		}
		h(w, r, rq)
	}
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (d *Dashboard) signedIn(r *http.Request) (*request, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	d.sessions.mu.Lock()
	s, ok := d.sessions.m[c.Value]
	if ok && !d.Now().Before(s.expires) {
		delete(d.sessions.m, c.Value)
		ok = false
	}
	d.sessions.mu.Unlock()
	if !ok || d.Tokens == nil {
		return nil, false
	}
	t, err := d.Tokens.FindTokenByHash(r.Context(), s.tokenHash)
	if err != nil {
		return nil, false
	}
	return &request{id: gantry.TokenIdentity(t), csrf: s.csrf}, true
}

func (d *Dashboard) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.signedIn(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.renderSignin(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := randomString()
	http.SetCookie(w, d.cookie(r, signinCookie, csrf, 600))
	d.render(w, status, "signin.html", page{Title: "Sign in", CSRF: csrf, Error: msg, Data: safeNext(r.FormValue("next"))})
}

func (d *Dashboard) signin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		d.renderSignin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		d.renderSignin(w, r, http.StatusForbidden, "The form is stale or came from another site: try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if secret == "" || d.Tokens == nil {
		d.renderSignin(w, r, http.StatusUnauthorized, "Paste a token (gantry token create NAME --role viewer).")
		return
	}
	hash := gantry.HashToken(secret)
	if _, err := d.Tokens.FindTokenByHash(r.Context(), hash); err != nil {
		d.Logger.Info("dashboard sign-in refused", "remote", r.RemoteAddr)
		d.renderSignin(w, r, http.StatusUnauthorized, "Unknown token.")
		return
	}
	id := randomString()
	d.sessions.mu.Lock()
	now := d.Now()
	for k, s := range d.sessions.m { // sessions are few; sweep the expired ones here
		if !now.Before(s.expires) {
			delete(d.sessions.m, k)
		}
	}
	d.sessions.m[id] = &session{tokenHash: hash, csrf: randomString(), expires: now.Add(d.SessionTTL)}
	d.sessions.mu.Unlock()
	http.SetCookie(w, d.cookie(r, sessionCookie, id, int(d.SessionTTL/time.Second)))
	http.SetCookie(w, d.cookie(r, signinCookie, "", -1))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (d *Dashboard) signout(w http.ResponseWriter, r *http.Request) {
	rq, ok := d.signedIn(r)
	if ok && r.ParseForm() == nil && sameToken(r.PostFormValue("csrf"), rq.csrf) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			d.sessions.mu.Lock()
			delete(d.sessions.m, c.Value)
			d.sessions.mu.Unlock()
		}
	}
	http.SetCookie(w, d.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}
