package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// relay forwards TCP connections to one address until it is cut: then it
// forwards nothing in either direction and sends no reset, as a network
// partition does, until it heals (which drops the connections it held, so
// the client connects again).
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); r.heal() })
	go r.serve()
	return r
}

func (r *relay) URL() string { return "http://" + r.ln.Addr().String() }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		cut := r.cut
		r.mu.Unlock()
		if cut {
			go io.Copy(io.Discard, c) // held: nothing reaches the server
			continue
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, up)
		r.mu.Unlock()
		go r.pipe(c, up)
		go r.pipe(up, c)
	}
}

// pipe copies src to dst while the relay is not cut; while it is, what
// arrives is dropped.
func (r *relay) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			cut := r.cut
			r.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (r *relay) partition() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
}

func (r *relay) heal() {
	r.mu.Lock()
	conns := r.conns
	r.conns, r.cut = nil, false
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// TestRouterPartitionKeepsServing: with two servers on PostgreSQL and two
// following routers under load, router r2 is cut off from both servers
// (no reset, nothing answers). It keeps serving what it had; a deploy's
// switch names r2 as behind and stops, and r1, which had applied it, goes
// back, so both routers serve the same release. Once the partition heals,
// r2 follows again and the next deploy switches both. No request fails.
// (Loopback only: the partition is a relay the test cuts, not a network
// namespace.)
func TestRouterPartitionKeepsServing(t *testing.T) {
	needTools(t)
	r1, r2 := freeAddr(t), freeAddr(t)
	c, a, b := twoServers(t, "part", r1)
	relays := []*relay{startRelay(t, strings.TrimPrefix(a.TCP, "http://")), startRelay(t, strings.TrimPrefix(b.TCP, "http://"))}
	startRouters(t, c, a, b, []string{r1, r2}, [][]string{{a.TCP, b.TCP}, {relays[0].URL(), relays[1].URL()}})
	mustCLI(t, b.TCP, "app", "add", "hello", "--repo", helloRepo(t))
	mustCLI(t, b.TCP, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, b.TCP, "release", "build", "--ref", "v1.1.0")
	for _, r := range []string{r1, r2} {
		wantVersion(t, "http://"+r, "test.hello.localhost", "1.0.0")
	}
	var loads []*loadtest.Load
	for _, r := range []string{r1, r2} {
		loads = append(loads, loadtest.Start(loadtest.Options{URL: "http://" + r + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 5 * time.Minute}))
	}

	for _, rl := range relays {
		rl.partition()
	}
	_, errs, code := runCLI(t, b.TCP, "deploy", "test", "--release", "1.1.0")
	if code == 0 || !strings.Contains(errs, "r2") || !strings.Contains(errs, "behind") {
		t.Fatalf("deploy with r2 partitioned: exit %d, %q; want a failure naming r2 as behind", code, errs)
	}
	t.Logf("deploy with r2 partitioned: exit %d: %s", code, strings.TrimSpace(errs))
	for _, r := range []string{r1, r2} {
		wantVersion(t, "http://"+r, "test.hello.localhost", "1.0.0")
	}
	before := loads[1].OK.Load()
	waitUntil(t, 10*time.Second, func() bool { return loads[1].OK.Load() > before+50 })
	out := mustCLI(t, b.TCP, "routers")
	if !strings.Contains(out, "r2") || !strings.Contains(out, "behind") {
		t.Errorf("gantry routers while r2 is partitioned:\n%s\nwant r2 shown behind", out)
	}

	for _, rl := range relays {
		rl.heal()
	}
	waitRoutersCaughtUp(t, b.API, 30*time.Second)
	mustCLI(t, b.TCP, "deploy", "test", "--release", "1.1.0")
	for _, r := range []string{r1, r2} {
		wantVersion(t, "http://"+r, "test.hello.localhost", "1.1.0")
	}
	for i, l := range loads {
		l.Stop()
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("router r%d: %d of %d requests failed:\n%s", i+1, n, n+l.OK.Load(), strings.Join(l.Failures(), "\n"))
		}
	}
}

// waitRoutersCaughtUp waits until every router registered with the server
// at apiURL serves the route table's version and has reported in the last
// 2 s: a partition healed, all follow again.
func waitRoutersCaughtUp(t *testing.T, apiURL string, within time.Duration) {
	t.Helper()
	waitUntil(t, within, func() bool {
		st, err := api.NewClient(apiURL, "").Routers(context.Background())
		if err != nil {
			return false
		}
		for _, r := range st.Routers {
			if r.Applied < st.Version || time.Since(r.Seen) > 2*time.Second {
				return false
			}
		}
		return true
	})
}
