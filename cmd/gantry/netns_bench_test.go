package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/postgres"
)

// BenchmarkRouteChangeAcrossHosts is BenchmarkRouteChangeApplied with
// every part on a host of its own (network namespaces, netlab_test.go):
// PostgreSQL on db, a server on s1 (--follow-routers), a router on r1
// following it over the network, two backends on app, the clients on cl.
// Each change is a new version of the route table written to the store
// (over its unix socket; the NOTIFY reaches s1 over the network), which
// moves the route to the other backend. applied_p50/p99_ms: from the
// write to the router answering a client on cl from the new backend;
// reported_p50/p99_ms: to the router's report of it in the store, which is
// what a leader's switch waits for.
//
//	GANTRY_INTEGRATION=1 go test ./cmd/gantry -run '^$' -bench RouteChangeAcrossHosts -benchtime 200x
func BenchmarkRouteChangeAcrossHosts(b *testing.B) {
	lab := newNetLab(b)
	lab.host("db", 40)
	s1 := lab.host("s1", 11)
	r1 := lab.host("r1", 21) + ":8080"
	app := lab.host("app", 30)
	lab.host("cl", 50)
	labURL, localURL := startPostgresOn(b, lab, "db", "bench")
	dir := b.TempDir()
	srv := startChildCmd(b, lab.command("s1", os.Args[0], "-test.run=^$"), filepath.Join(dir, "s1"), "", "",
		"GANTRY_TEST_LISTEN="+s1+":7878", "GANTRY_TEST_STORE="+labURL, "GANTRY_TEST_FOLLOW_ROUTERS=1", "GANTRY_TEST_PROXY_URL=http://"+r1)
	tokenFile := filepath.Join(dir, "router.token")
	if err := os.WriteFile(tokenFile, []byte(testerToken(b, srv.API)), 0o600); err != nil {
		b.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "r1"), 0o755)
	startBinProxy(b, lab.wrapper("r1", gantryBinary(b)), filepath.Join(dir, "r1"), "--listen", r1, "--follow", srv.TCP,
		"--follow-token-file", tokenFile, "--follow-name", "r1")
	waitUntil(b, 20*time.Second, func() bool {
		st, err := api.NewClient(srv.API, "").Routers(context.Background())
		return err == nil && len(st.Routers) == 1
	})

	var backends []string
	for _, name := range []string{"blue", "green"} {
		ln := lab.Listen("app", app+":0")
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
		go hs.Serve(ln)
		b.Cleanup(func() { hs.Close() })
		backends = append(backends, ln.Addr().String())
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, localURL, "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	client := lab.client("cl")
	serving := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+r1+"/", nil)
		req.Host = "bench.localhost"
		resp, err := client.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	reported := func(version int64) bool {
		rs, err := db.ListRouterReports(ctx)
		return err == nil && len(rs) == 1 && rs[0].Applied >= version
	}
	route := gantry.Route{Name: "bench/prod", Hosts: []string{"bench.localhost"}, Health: gantry.HealthCheck{Interval: 100 * time.Millisecond}}
	change := func(i int) (time.Time, *gantry.RouteTable) {
		t := &gantry.RouteTable{Routes: []gantry.RouteEntry{{Route: route, Active: []string{backends[i%2]}}}}
		t0 := time.Now()
		if err := db.PutRoutes(ctx, t); err != nil {
			b.Fatal(err)
		}
		return t0, t
	}
	for i := range backends { // both targets known to the router and checked
		_, t := change(i)
		waitUntil(b, 20*time.Second, func() bool { return reported(t.Version) })
	}
	applied := make([]time.Duration, 0, b.N)
	report := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := []string{"blue", "green"}[i%2]
		t0, t := change(i)
		for deadline := t0.Add(10 * time.Second); serving() != want; {
			if time.Now().After(deadline) {
				b.Fatalf("change %d: r1 does not serve %s after 10s", i, want)
			}
			time.Sleep(200 * time.Microsecond)
		}
		applied = append(applied, time.Since(t0))
		for deadline := t0.Add(10 * time.Second); !reported(t.Version); {
			if time.Now().After(deadline) {
				b.Fatalf("change %d: r1 did not report version %d within 10s", i, t.Version)
			}
			time.Sleep(200 * time.Microsecond)
		}
		report = append(report, time.Since(t0))
	}
	b.StopTimer()
	for name, ds := range map[string][]time.Duration{"applied": applied, "reported": report} {
		slices.Sort(ds)
		b.ReportMetric(ms(ds[len(ds)/2]), name+"_p50_ms")
		b.ReportMetric(ms(ds[(len(ds)*99)/100]), name+"_p99_ms")
	}
}
