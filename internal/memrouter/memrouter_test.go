package memrouter

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// serve starts a target answering /up with status.
func serve(t *testing.T, status int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestDeployRollbackAndGates(t *testing.T) {
	ctx := context.Background()
	r := New()
	r.Tries = 2
	rt := gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}, Health: gantry.HealthCheck{Path: "/up"}}
	a, b, sick := serve(t, 200), serve(t, 200), serve(t, 503)
	if err := r.SetPreview(ctx, rt.Name, []string{a}); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("preview of a missing route: got %v, want ENOTFOUND", err)
	}
	if _, err := r.Deploy(ctx, rt, []string{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Deploy(ctx, rt, []string{sick}); gantry.ErrorCode(err) != gantry.EUNAVAILABLE {
		t.Errorf("unhealthy deploy: got %v, want EUNAVAILABLE", err)
	}
	if got := r.Serving(rt.Name); strings.Join(got, ",") != a {
		t.Errorf("after a refused switch: serving %v, want [%s]", got, a)
	}
	if _, err := r.Deploy(ctx, rt, []string{b}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(ctx, rt.Name); err != nil {
		t.Fatal(err)
	}
	st, _ := r.Route(rt.Name)
	if strings.Join(st.Active, ",") != a || strings.Join(st.Previous, ",") != b || st.Switches != 3 {
		t.Errorf("after rollback: %+v, want active %s previous %s, 3 switches", st, a, b)
	}
	if err := r.Pause(ctx, rt.Name, true); err != nil {
		t.Fatal(err)
	}
	r.AddTraffic(a, 10, 2, 0)
	sts, _ := r.Status(ctx)
	if len(sts) != 1 || !sts[0].Paused || !sts[0].WritesOnly || sts[0].Active[0].Requests != 10 || sts[0].Active[0].Errors5xx != 2 {
		t.Errorf("status: got %+v", sts)
	}
	if err := r.RemoveRoute(ctx, rt.Name); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Calls("deploy")); n != 3 {
		t.Errorf("deploy calls: got %d, want 3", n)
	}
}
