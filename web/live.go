package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// deploymentEvents streams a deployment's journal as server-sent events
// while it runs: the store is polled every PollInterval and a "steps" event
// carries the re-rendered steps whenever they change; "done" ends it.
func (d *Dashboard) deploymentEvents(w http.ResponseWriter, r *http.Request, rq *request) {
	app := r.PathValue("app")
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(d.PollInterval)
	defer t.Stop()
	var last string
	deadline := time.Now().Add(time.Hour) // a stream is not kept forever
	for {
		dep, err := d.loadDeployment(r.Context(), rq.id, app, r.PathValue("id"))
		if err != nil {
			writeEvent(w, "error", gantry.ErrorMessage(err))
			_ = rc.Flush()
			return
		}
		var buf bytes.Buffer
		v := deploymentView{Deployment: dep, Running: dep.State == gantry.DeploymentRunning, Now: d.Now(),
			Canary: d.loadCanary(r.Context(), rq.id, app, dep)}
		if err := d.pages["deployment.html"].ExecuteTemplate(&buf, "steps", v); err != nil {
			d.Logger.Error("render steps", "error", err)
			return
		}
		if s := buf.String(); s != last {
			last = s
			writeEvent(w, "steps", s)
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if !v.Running || time.Now().After(deadline) {
			writeEvent(w, "done", dep.State)
			_ = rc.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-d.closed:
			return
		case <-t.C:
		}
	}
}

// writeEvent writes one SSE event; every line of data gets its own field.
func writeEvent(w http.ResponseWriter, name, data string) {
	fmt.Fprintf(w, "event: %s\n", name)
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	fmt.Fprint(w, "\n")
}
