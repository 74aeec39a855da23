package deploy_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// state is what an app serves and holds, for "nothing changed" checks: its
// environments' slots, the routes, the deployments not finished, the locks.
func (h *Harness) state(tb testing.TB, app string) string {
	tb.Helper()
	var b strings.Builder
	envs, err := h.Store.ListEnvironments(h.Ctx, app)
	if err != nil {
		tb.Fatal(err)
	}
	sort.Slice(envs, func(i, j int) bool { return envs[i].Name < envs[j].Name })
	for _, e := range envs {
		slots, _ := json.Marshal(e.Slots)
		fmt.Fprintf(&b, "env %s active %q slots %s\n", e.Name, e.Active, slots)
		if l, err := h.Store.FindLock(h.Ctx, app, e.Name); err == nil {
			fmt.Fprintf(&b, "lock %s by %s\n", e.Name, l.Holder)
		}
	}
	sts, _ := h.Router.Status(h.Ctx)
	for _, st := range sts {
		fmt.Fprintf(&b, "route %s active %v previous %v preview %v paused %t maintenance %t\n",
			st.Route.Name, addrsOf(st.Active), st.Previous, addrsOf(st.Preview), st.Paused, st.Maintenance)
	}
	for _, d := range h.Running(tb, app) {
		fmt.Fprintf(&b, "deployment #%d %s %s\n", d.ID, d.Kind, d.State)
	}
	for _, r := range h.Driver.Running() {
		fmt.Fprintf(&b, "instance %s %s\n", r.Handle, r.ReleaseID)
	}
	if applied, active := h.DB.Applied(h.DBURL(app, "prod")); len(applied) > 0 {
		fmt.Fprintf(&b, "db prod %v active %q\n", applied, active)
	}
	if applied, active := h.DB.Applied(h.DBURL(app, "test")); len(applied) > 0 {
		fmt.Fprintf(&b, "db test %v active %q\n", applied, active)
	}
	return b.String()
}

func addrsOf(ts []gantry.TargetStatus) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Addr)
	}
	sort.Strings(out)
	return out
}

// mustRefuse checks a gate's refusal: EPOLICY, a message that starts with
// the gate's name and names the command that would be allowed, and an app
// whose state is what it was before.
func (h *Harness) mustRefuse(tb testing.TB, app, before string, err error, gate, allowed string) {
	tb.Helper()
	msg := gantry.ErrorMessage(err)
	switch {
	case err == nil:
		tb.Errorf("gate %s: the operation was allowed, want a refusal", gate)
		return
	case gantry.ErrorCode(err) != gantry.EPOLICY:
		tb.Errorf("gate %s: got code %s (%s), want %s", gate, gantry.ErrorCode(err), msg, gantry.EPOLICY)
	case !strings.HasPrefix(msg, gate+": "):
		tb.Errorf("gate %s: message %q does not start with %q", gate, msg, gate+": ")
	case allowed != "" && !strings.Contains(msg, allowed):
		tb.Errorf("gate %s: message %q does not name the allowed command %q", gate, msg, allowed)
	}
	if after := h.state(tb, app); after != before {
		tb.Errorf("gate %s: the refusal changed the state:\nbefore:\n%s\nafter:\n%s", gate, before, after)
	}
}

// mustAllow fails when err is not nil.
func mustAllow(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: want it allowed, got %v", what, err)
	}
}

// pipeline is test → prod with promote_from, and what a test changes.
func pipeline(mod func(prod *Env)) App {
	app := Simple("shop")
	mod(&app.Envs[1])
	return app
}
