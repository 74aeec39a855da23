package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestCutStreamsReleaseTheirTarget: a response the upstream cuts off in the
// middle of its body makes the forwarding abort the handler; the target's
// in-flight count and the route's figures must still be settled, or
// least-in-flight balancing is skewed and every later drain of the target
// waits its whole timeout.
func TestCutStreamsReleaseTheirTarget(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/up" {
			return
		}
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "the first bytes of a long body")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // cut off mid-body
		}
	}))
	defer back.Close()
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("shop/test", "cut.localhost"), back.Listener.Addr().String())
	c := testClient()
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/stream", nil)
		req.Host = "cut.localhost"
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	waitFor(t, "the target's in-flight count back to 0", 5*time.Second, func() bool {
		st, _ := r.Status(t.Context())
		for _, rs := range st {
			for _, ts := range rs.Active {
				if ts.InFlight != 0 {
					return false
				}
			}
		}
		return true
	})
	st, _ := r.Status(t.Context())
	if got := st[0].Active[0].Requests; got < 3 {
		t.Errorf("the target counts %d requests, want the 3 cut ones counted", got)
	}
}
