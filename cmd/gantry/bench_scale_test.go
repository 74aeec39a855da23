package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
	_ "modernc.org/sqlite"
)

// seedHistory writes n finished deployments of app hello (half on test,
// half on prod) straight into a state database in one transaction: the
// Store's own path syncs every commit, which is right for a journal and far
// too slow to seed a benchmark.
func seedHistory(b *testing.B, dataDir string, n int) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(dataDir, "state.db")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		b.Fatal(err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateApp(ctx, &gantry.App{Name: "hello", Repo: "/nonexistent"}); err != nil {
		b.Fatal(err)
	}
	for _, env := range []string{"test", "prod"} {
		if err := db.PutEnvironment(ctx, &gantry.Environment{App: "hello", Name: env}); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO deployments (app, env, kind, release_id, version, from_release, from_env, slot,
		strategy, actor, state, error, created_at, finished_at) VALUES ('hello', ?, 'deploy', ?, '1.0.0', '', '', 'blue',
		'bluegreen', 'ci', 'succeeded', '', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000000Z07:00")
		env := []string{"test", "prod"}[i%2]
		if _, err := stmt.Exec(env, fmt.Sprintf("1.0.0-%07d", i), at, at); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStatusHistory100k: `gantry status` and `gantry history prod`,
// CLI to API to store and back, with 100,000 deployments stored.
func BenchmarkStatusHistory100k(b *testing.B) {
	dir := b.TempDir()
	seedHistory(b, dir, 100_000)
	s := &Server{DataDir: dir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(discard{}, "text")}
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, verb := range [][]string{{"status"}, {"history", "prod"}} {
		b.Run(verb[0], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, errs, code := runCLIB("unix://"+s.SocketPath, append([]string{"--app", "hello"}, verb...)...)
				if code != 0 {
					b.Fatalf("gantry %v: exit %d: %s", verb, code, errs)
				}
			}
		})
	}
}

// runCLIB is runCLI for benchmarks.
func runCLIB(server string, args ...string) (string, string, int) {
	var out, errb strings.Builder
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "GANTRY_SERVER" {
			return server
		}
		return ""
	}}
	code := m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// BenchmarkServerMemory1000Envs reports the resident memory of a server
// that holds 1,000 environments, each with a live route in the router
// (health-checked) and a record in the store, after listing them all.
func BenchmarkServerMemory1000Envs(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer backend.Close()
	addr := strings.TrimPrefix(backend.URL, "http://")
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		runtime.GC()
		before := rssMB(b)
		s := &Server{DataDir: dir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(discard{}, "text")}
		if err := s.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := s.Store.CreateApp(ctx, &gantry.App{Name: "many", Repo: "/nonexistent"}); err != nil {
			b.Fatal(err)
		}
		for e := range 1000 {
			name := "env" + strconv.Itoa(e)
			env := &gantry.Environment{App: "many", Name: name, Spec: gantry.EnvironmentSpec{Hosts: []string{name + ".many.localhost"}}}
			slot := env.Slot(gantry.SlotBlue)
			slot.State, slot.ReleaseID, slot.Version = gantry.SlotActive, "1.0.0-abcdef0", "1.0.0"
			slot.Instances = []gantry.Instance{{Service: "web", Index: 1, Addr: addr, Handle: `{"pid":1}`}}
			env.Active = gantry.SlotBlue
			if err := s.Store.PutEnvironment(ctx, env); err != nil {
				b.Fatal(err)
			}
			route := gantry.Route{Name: "many/" + name, Hosts: env.Spec.Hosts, Health: gantry.HealthCheck{Path: "/", Interval: 5 * time.Second}}
			if _, err := s.Router.Deploy(ctx, route, []string{addr}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.Client.ListEnvironments(ctx, "many"); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		after := rssMB(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(after, "rss-MB")
		b.ReportMetric(after-before, "rss-added-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
		s.Close()
	}
}

// rssMB reads this process's resident set size.
func rssMB(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
