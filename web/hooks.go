package web

import (
	"net/http"
	"time"

	"github.com/gantry-dev/gantry"
)

// The hooks page of an app: each forge webhook (and the poller) with the
// payload URL to paste into the forge, the token it acts as, whether it
// posts commit statuses, and its latest deliveries with what the server
// answered and how their work ended. It reads GET /v1/apps/{app}/hooks,
// as `gantry hook list` does: an admin's page, and never a secret.

type hooksView struct {
	Hooks []*gantry.ForgeHook
	Now   time.Time
}

func (d *Dashboard) hooks(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	var v hooksView
	if err := d.get(r.Context(), rq.id, appPath(app)+"/hooks", &v.Hooks); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	v.Now = d.Now()
	p := rq.page("Hooks of "+app, "", v)
	p.App, p.Nav = app, "hooks"
	d.render(w, http.StatusOK, "hooks.html", p)
}
