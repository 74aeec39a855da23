package kubernetes_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	corev1 "k8s.io/api/core/v1"
)

// servePods makes the ServeImages' pods of ns answer with who they are:
// slot, pod, path and the Authorization header they received.
func servePods(t *testing.T, c *k8stest.Cluster, ns string) {
	t.Helper()
	c.Serve(t, ns, 8080, func(pod *corev1.Pod) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/page":
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, pageHTML)
				return
			case "/moved":
				http.Redirect(w, r, "/page", http.StatusFound)
				return
			}
			fmt.Fprintf(w, "slot=%s pod=%s path=%s auth=%q", pod.Labels[kubernetes.LabelSlot], pod.Name, r.URL.Path, r.Header.Get("Authorization"))
		})
	})
}

const pageHTML = `<html><body><a href="/x">x</a> <img src="/i.png"></body></html>`

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req := mustRequest(t, url)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	// Redirects are not followed: a 301 from the API server to a cleaned
	// path must show, not be hidden by the client.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpenPreviewThroughServiceProxy sends real requests through the
// preview forwarder, the API server's service proxy and the preview
// Service to real HTTP servers on the candidate's pod IPs: they reach the
// candidate slot's pods only (both of them), never with the caller's or
// Gantry's credentials, and a path cannot climb out of the Service's proxy
// into the API server. A preview of the live slot is refused.
func TestOpenPreviewThroughServiceProxy(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "preview")
	servePods(t, c, ns)
	d := newDriver(t, c, ns)
	MustStartSlot(t, d, slot("shop", "test", "blue", "1.0.0", webSpec(k8stest.ServeImages[0], "1.0.0")))
	blue := gantry.SlotRef{App: "shop", Env: "test", Slot: "blue"}
	MustSwitch(t, d, blue)
	MustStartSlot(t, d, slot("shop", "test", "green", "1.1.0", webSpec(k8stest.ServeImages[1], "1.1.0")))
	green := gantry.SlotRef{App: "shop", Env: "test", Slot: "green"}
	ctx := ctxFor(t)

	p, err := d.OpenPreview(ctx, green)
	if err != nil {
		t.Fatalf("OpenPreview(green): %v", err)
	}
	if !strings.Contains(p.Via, "service proxy") || !strings.Contains(p.Via, "shop-web-preview") {
		t.Errorf("Via = %q, want the service proxy to shop-web-preview", p.Via)
	}
	pods := map[string]bool{}
	for i := 0; i < 40 && len(pods) < 2; i++ {
		code, body := get(t, p.URL+"/hello/", "Bearer the-app-s-own")
		if code != http.StatusOK || !strings.HasPrefix(body, "slot=green ") || !strings.Contains(body, " path=/hello/ ") {
			t.Fatalf("GET /hello/ through the preview: %d %q, want 200 from a green pod at /hello/", code, body)
		}
		if !strings.HasSuffix(body, `auth=""`) {
			t.Fatalf("the pod received credentials: %q", body)
		}
		pods[strings.Fields(body)[1]] = true
	}
	if len(pods) != 2 {
		t.Errorf("40 requests reached pods %v, want both green pods", pods)
	}
	// Encoded or not, ".." stays under the Service's proxy path.
	for _, path := range []string{"/../../../../api/v1/namespaces", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/api/v1/secrets"} {
		code, body := get(t, p.URL+path, "")
		if code != http.StatusOK || !strings.HasPrefix(body, "slot=green ") || !strings.Contains(body, " path=/api/v1/") {
			t.Errorf("GET %s: %d %q, want the green pod answering under /api/v1/", path, code, body)
		}
	}
	// The API server rewrites links in HTML to its proxy path; the
	// forwarder gives the check the app's own page and redirects.
	if code, body := get(t, p.URL+"/page", ""); code != http.StatusOK || body != pageHTML {
		t.Errorf("GET /page: %d %q, want the app's page %q", code, body, pageHTML)
	}
	if resp, err := http.DefaultTransport.RoundTrip(mustRequest(t, p.URL+"/moved")); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.Header.Get("Location") != "/page" {
		t.Errorf("GET /moved: Location %q, want /page", resp.Header.Get("Location"))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(p.URL + "/"); err == nil {
		t.Error("the forwarder still answers after Close")
	}

	// After the switch to green the preview selects blue: green is live.
	MustSwitch(t, d, green)
	if _, err := d.OpenPreview(ctx, green); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("OpenPreview(live slot green): %v, want ECONFLICT", err)
	}
	p, err = d.OpenPreview(ctx, blue)
	if err != nil {
		t.Fatalf("OpenPreview(blue, now the standby): %v", err)
	}
	defer p.Close()
	if code, body := get(t, p.URL+"/", ""); code != http.StatusOK || !strings.HasPrefix(body, "slot=blue ") {
		t.Errorf("GET / through the preview after the switch: %d %q, want blue", code, body)
	}
}
