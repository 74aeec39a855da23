package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/httplimit"
)

// backend is a real HTTP upstream on 127.0.0.1 that names itself in every
// answer, so a test can tell which target served a request.
type backend struct {
	name   string
	srv    *httptest.Server
	status atomic.Int32 // answer of /up; 0 means 200
	hits   atomic.Int64
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

// MustBackend starts a backend. Paths: /up (health), /slow?ms=N, /ws
// (WebSocket echo), /sse?n=N&gap=ms, /echo-headers, /hang; anything else
// answers "<name>".
func MustBackend(tb testing.TB, name string) *backend {
	tb.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(b.handler())
	tb.Cleanup(b.srv.Close)
	return b
}

func (b *backend) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) {
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		b.hits.Add(1)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			_, _ = io.WriteString(w, b.name)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		<-r.Context().Done()
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(b.name+":"), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		gap, _ := strconv.Atoi(r.URL.Query().Get("gap"))
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-time.After(time.Duration(gap) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/echo-headers", func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id"} {
			fmt.Fprintf(w, "%s=%s\n", k, r.Header.Get(k))
		}
		fmt.Fprintf(w, "Host=%s\n", r.Host)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, b.name)
	})
	return mux
}

// MustRouter returns a router and a real front server for it.
func MustRouter(tb testing.TB, cfg Config) (*Router, *httptest.Server) {
	tb.Helper()
	return MustRouterWithin(tb, cfg, httplimit.Limits{})
}

// MustRouterWithin is MustRouter with the front server's client limits.
func MustRouterWithin(tb testing.TB, cfg Config, limits httplimit.Limits) (*Router, *httptest.Server) {
	tb.Helper()
	r := New(cfg)
	if os.Getenv("GANTRY_ROUTER_SERVER") == "net/http" {
		front := httptest.NewUnstartedServer(r)
		front.Config = NewServer(r, limits)
		front.Start()
		tb.Cleanup(func() {
			front.Close()
			r.Close()
		})
		return r, front
	}
	// The router's own loop, as gantry proxy run serves plain listeners;
	// GANTRY_ROUTER_SERVER=net/http runs the same tests on net/http.
	srv := NewLoopServer(r, limits)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	front := &httptest.Server{Listener: ln, Config: srv.Server, URL: "http://" + ln.Addr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		srv.Close()
		<-done
		r.Close()
	})
	return r, front
}

// fastRoute is a route with health checks quick enough for tests and bounds
// generous enough for a loaded machine.
func fastRoute(name string, hosts ...string) gantry.Route {
	return gantry.Route{
		Name:          name,
		Hosts:         hosts,
		Health:        gantry.HealthCheck{Path: "/up", Interval: 20 * time.Millisecond, Timeout: time.Second},
		DeployTimeout: 10 * time.Second,
		DrainTimeout:  10 * time.Second,
	}
}

// MustDeploy deploys and fails the test on error.
func MustDeploy(tb testing.TB, r *Router, rc gantry.Route, addrs ...string) *gantry.SwitchResult {
	tb.Helper()
	res, err := r.Deploy(context.Background(), rc, addrs)
	if err != nil {
		tb.Fatalf("Deploy(%s, %v): %v", rc.Name, addrs, err)
	}
	return res
}

// testClient does not share connections with other tests and never follows
// redirects.
func testClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// MustGet sends a request with the given Host and returns status and body.
func MustGet(tb testing.TB, c *http.Client, front *httptest.Server, host, path string) (int, string) {
	tb.Helper()
	code, body, err := doGet(c, front, host, path)
	if err != nil {
		tb.Fatalf("GET %s%s: %v", host, path, err)
	}
	return code, body
}

func doGet(c *http.Client, front *httptest.Server, host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, front.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond until it holds or the deadline passes; it is for
// conditions with no event to wait on (a background health checker's view).
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
