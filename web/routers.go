package web

import (
	"net/http"
	"time"

	"github.com/gantry-dev/gantry"
)

// The routers page: which server of the control plane leads (holds the
// lease, and with it the fencing token), and what each router that follows
// the control plane (`gantry proxy run --follow`) serves. It reads
// GET /v1/leader and GET /v1/routers, as `gantry routers` does.

// leaderStatus is GET /v1/leader.
type leaderStatus struct {
	Lease   *gantry.Lease `json:"lease"`
	Leading bool          `json:"leading"`
}

// routersStatus is GET /v1/routers.
type routersStatus struct {
	Version int64                  `json:"version"`
	Routers []*gantry.RouterReport `json:"routers"`
}

type routersView struct {
	Leader  leaderStatus
	Version int64
	Routers []routerRow
	Now     time.Time
}

// routerRow is one router's report (each route it serves with its active
// targets as that router sees them) and how far it is from the route table.
type routerRow struct {
	*gantry.RouterReport
	State string // up-to-date, behind, failed
}

func (d *Dashboard) routers(w http.ResponseWriter, r *http.Request, rq *request) {
	var v routersView
	if err := d.get(r.Context(), rq.id, "/v1/leader", &v.Leader); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	var st routersStatus
	if err := d.get(r.Context(), rq.id, "/v1/routers", &st); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	v.Version, v.Now = st.Version, d.Now()
	for _, rep := range st.Routers {
		row := routerRow{RouterReport: rep, State: rep.State(st.Version)}
		v.Routers = append(v.Routers, row)
	}
	p := rq.page("Control plane and routers", "", v)
	p.Nav = "routers"
	d.render(w, http.StatusOK, "routers.html", p)
}
