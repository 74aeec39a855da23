package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gantry-dev/gantry"
)

// action is what a confirmation page shows and its form sends back.
type action struct {
	Name    string // deploy, promote, rollback, approve, lock, unlock, cancel
	Verb    string // the button's label
	Summary string
	Danger  bool
	Env     string
	Release string
	From    string
	To      string
	Reason  string
	TTL     string
}

func actionFrom(app string, v url.Values, name string) (*action, error) {
	a := &action{Name: name, Env: v.Get("env"), Release: v.Get("release"), From: v.Get("from"), To: v.Get("to"), Reason: v.Get("reason"), TTL: v.Get("ttl")}
	need := func(fields ...string) error {
		for _, f := range fields {
			if v.Get(f) == "" {
				return gantry.Errorf(gantry.EINVALID, "%s needs %s", name, f)
			}
		}
		return nil
	}
	var err error
	switch name {
	case "deploy":
		err = need("env", "release")
		a.Verb, a.Summary = "Deploy", fmt.Sprintf("Deploy release %s of %s to %s. The candidate starts on the idle slot; traffic switches only once every instance is healthy.", a.Release, app, a.Env)
	case "promote":
		err = need("from", "to")
		a.Env = a.To
		a.Verb, a.Summary = "Promote", fmt.Sprintf("Promote what %s runs to %s: the very same artifacts, never rebuilt.", a.From, a.To)
	case "rollback":
		err = need("env")
		a.Verb, a.Danger = "Roll back", true
		a.Summary = fmt.Sprintf("Roll %s back to the release kept warm (or the one before the current).", a.Env)
		if a.To != "" {
			a.Summary = fmt.Sprintf("Roll %s back to release %s.", a.Env, a.To)
		}
	case "approve":
		err = need("env", "release")
		a.Verb, a.Summary = "Approve", fmt.Sprintf("Approve release %s of %s for %s. The approval is bound to this release's digests and configuration.", a.Release, app, a.Env)
	case "lock":
		err = need("env")
		a.Verb, a.Summary = "Lock", fmt.Sprintf("Lock %s: deploys, promotions and rollbacks are refused until it is unlocked.", a.Env)
	case "unlock":
		err = need("env")
		a.Verb, a.Summary = "Unlock", fmt.Sprintf("Unlock %s (a lock held by someone else is taken away). The lock of a deployment that is running or paused is not: cancel that deployment instead.", a.Env)
	case "cancel":
		err = need("env")
		a.Verb, a.Danger = "Cancel deployment", true
		a.Summary = fmt.Sprintf("Cancel the deployment that holds %s. Before its switch its candidate is stopped and the current release keeps serving; after its switch the new release stays. A paused rollout is aborted.", a.Env)
	default:
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no action %q", name)
	}
	return a, err
}

func (d *Dashboard) confirm(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	a, err := actionFrom(app, r.URL.Query(), r.PathValue("action"))
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	p := rq.page(a.Verb+" — confirm", "", a)
	p.App = app
	d.render(w, http.StatusOK, "confirm.html", p)
}

func (d *Dashboard) act(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	a, err := actionFrom(app, r.PostForm, r.PathValue("action"))
	if err != nil {
		d.fail(w, r, rq, err)
		return
	}
	env := appPath(app) + "/environments/" + url.PathEscape(a.Env)
	var st started
	switch a.Name {
	case "deploy":
		st = d.start(rq.id, env+"/deploy", map[string]string{"release": a.Release})
	case "promote":
		st = d.start(rq.id, env+"/promote", map[string]string{"from": a.From})
	case "rollback":
		body := map[string]string{}
		if a.To != "" {
			body["to"] = a.To
		}
		st = d.start(rq.id, env+"/rollback", body)
	case "approve":
		body := map[string]string{"release": a.Release}
		if a.Reason != "" {
			body["comment"] = a.Reason
		}
		st.err = d.do(r.Context(), rq.id, http.MethodPost, env+"/approvals", body)
	case "lock":
		if a.Reason == "" {
			d.confirmAgain(w, rq, app, a, gantry.Errorf(gantry.EINVALID, "a lock needs a reason"))
			return
		}
		body := map[string]string{"reason": a.Reason}
		if a.TTL != "" {
			body["ttl"] = a.TTL
		}
		st.err = d.do(r.Context(), rq.id, http.MethodPost, env+"/lock", body)
	case "unlock":
		// Forced, to take away a lock someone else left; the API still
		// refuses the lock of a running or paused deployment.
		st.err = d.do(r.Context(), rq.id, http.MethodDelete, env+"/lock?force=true", nil)
	case "cancel":
		st.err = d.do(r.Context(), rq.id, http.MethodPost, env+"/cancel", nil)
	}
	if st.deploymentID > 0 {
		target := "/apps/" + url.PathEscape(app) + "/deployments/" + strconv.FormatInt(st.deploymentID, 10)
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	if st.err != nil {
		d.confirmAgain(w, rq, app, a, st.err)
		return
	}
	http.Redirect(w, r, "/?flash="+url.QueryEscape(a.Verb+": done on "+a.Env), http.StatusSeeOther)
}

// confirmAgain shows the confirmation page with why the action failed.
func (d *Dashboard) confirmAgain(w http.ResponseWriter, rq *request, app string, a *action, err error) {
	p := rq.page(a.Verb+" — refused", gantry.ErrorMessage(err), a)
	p.App = app
	d.render(w, gantry.HTTPStatus(gantry.ErrorCode(err)), "confirm.html", p)
}
