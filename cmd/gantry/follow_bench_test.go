package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/internal/pgtest"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/jackc/pgx/v5"
)

// BenchmarkRouteChangeApplied measures, on a server whose state is in
// PostgreSQL and whose routes routers follow, how long a route change
// takes to reach a following router over the API: from the switch's start
// on the leader to the router having switched (applied_p50/p99_ms: the
// store's write and NOTIFY, the server's answer to the router's watch, the
// router's own switch), and to the switch returning on the leader once the
// router has reported it (switch_p50/p99_ms).
//
//	GANTRY_INTEGRATION=1 go test ./cmd/gantry -run '^$' -bench RouteChangeApplied -benchtime 200x
func BenchmarkRouteChangeApplied(b *testing.B) {
	pg := pgtest.Start(b)
	u, err := url.Parse(pg.CreateDB(b, "bench_follow"))
	if err != nil {
		b.Fatal(err)
	}
	u.RawQuery = "schema=bench_follow&" + u.RawQuery
	s := &Server{DataDir: b.TempDir(), Listen: "127.0.0.1:0", StoreURL: u.String(), FollowRouters: true,
		SecretsKey: b.TempDir() + "/secrets.key", Logger: newLogger(discard{}, "text")}
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tok, err := s.Client.CreateToken(ctx, api.CreateTokenRequest{Name: "router", Role: gantry.RoleDeployer})
	if err != nil {
		b.Fatal(err)
	}
	local := proxy.New(proxy.Config{})
	defer local.Close()
	appliedAt := make(chan time.Time, 1)
	f := &fleet.Follower{Name: "bench", Source: api.NewClient(s.APIURL, tok.Secret), Local: local,
		OnApplied: func(int64) {
			select {
			case appliedAt <- time.Now():
			default:
			}
		}}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go f.Run(fctx)

	var backends []string
	for _, name := range []string{"blue", "green"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		defer srv.Close()
		backends = append(backends, strings.TrimPrefix(srv.URL, "http://"))
	}
	epoch, ok := s.Leader.Fence()
	if !ok {
		b.Fatal("the only server does not lead")
	}
	lctx := gantry.WithFence(ctx, epoch)
	for {
		st, err := s.Client.Routers(ctx)
		if err == nil && len(st.Routers) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	route := gantry.Route{Name: "bench/prod", Hosts: []string{"bench.localhost"}, Health: gantry.HealthCheck{Interval: 100 * time.Millisecond}}
	for _, t := range backends { // both targets known and checked
		if _, err := s.Router.Deploy(lctx, route, []string{t}); err != nil {
			b.Fatal(err)
		}
		<-appliedAt
	}
	applied := make([]time.Duration, 0, b.N)
	switched := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Router.Deploy(lctx, route, []string{backends[i%2]}); err != nil {
			b.Fatal(err)
		}
		switched = append(switched, time.Since(t0))
		applied = append(applied, (<-appliedAt).Sub(t0))
	}
	b.StopTimer()
	for name, ds := range map[string][]time.Duration{"applied": applied, "switch": switched} {
		slices.Sort(ds)
		b.ReportMetric(ms(ds[len(ds)/2]), name+"_p50_ms")
		b.ReportMetric(ms(ds[(len(ds)*99)/100]), name+"_p99_ms")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkStatusHistory100kPostgres is BenchmarkStatusHistory100k with the
// state in PostgreSQL: `gantry status` and `gantry history prod` through
// the API with 100,000 deployments in the store.
//
//	GANTRY_INTEGRATION=1 go test ./cmd/gantry -run '^$' -bench StatusHistory100kPostgres
func BenchmarkStatusHistory100kPostgres(b *testing.B) {
	pg := pgtest.Start(b)
	u, err := url.Parse(pg.CreateDB(b, "bench_history"))
	if err != nil {
		b.Fatal(err)
	}
	u.RawQuery = "schema=bench_history&" + u.RawQuery
	s := &Server{DataDir: b.TempDir(), Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", StoreURL: u.String(),
		SecretsKey: b.TempDir() + "/secrets.key", Logger: newLogger(discard{}, "text")}
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.State.CreateApp(ctx, &gantry.App{Name: "hello", Repo: "/nonexistent"}); err != nil {
		b.Fatal(err)
	}
	for _, env := range []string{"test", "prod"} {
		if err := s.State.PutEnvironment(ctx, &gantry.Environment{App: "hello", Name: env}); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := pgx.ParseConfig(strings.Replace(u.String(), "schema=bench_history&", "", 1))
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = "bench_history"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO deployments
		(app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor, state, error, created_at, finished_at)
		SELECT 'hello', (ARRAY['test','prod'])[1 + i % 2], 'deploy', '1.0.0-' || lpad(i::text, 7, '0'), '1.0.0', '', '', 'blue',
			'bluegreen', 'ci', 'succeeded', '', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z'
		FROM generate_series(1, 100000) AS i`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE deployments`); err != nil {
		b.Fatal(err)
	}
	for _, verb := range [][]string{{"status"}, {"history", "prod"}} {
		b.Run(verb[0], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, errs, code := runCLIB("unix://"+s.SocketPath, append([]string{"--app", "hello"}, verb...)...); code != 0 {
					b.Fatalf("gantry %v: exit %d: %s", verb, code, errs)
				}
			}
		})
	}
}
