package dbbench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/dbchange"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// knobs, from the environment so that a run can be reproduced by its command.
func knob(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type sample struct {
	mu   sync.Mutex
	lats []time.Duration
	// stall is the longest time a writer waited for one statement.
	stall time.Duration
	errs  int
	first error
}

func (s *sample) add(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		if s.first == nil {
			s.first = err
		}
		return
	}
	s.lats = append(s.lats, d)
	s.stall = max(s.stall, d)
}

func (s *sample) pct(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lats) == 0 {
		return 0
	}
	l := slices.Clone(s.lats)
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

// write runs writers through the old release's schema until stop: half
// inserts, half updates of a random existing row (the rows the backfill
// rewrites), recording each statement's latency into *cur.
func write(ctx context.Context, db *sql.DB, rows int, stop <-chan struct{}, cur func() *sample, wg *sync.WaitGroup) {
	defer wg.Done()
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, err = db.ExecContext(ctx, `INSERT INTO items (name) VALUES ($1)`, "w"+strconv.Itoa(i))
		} else {
			_, err = db.ExecContext(ctx, `UPDATE items SET name = $1 WHERE id = $2`, "u"+strconv.Itoa(i), 1+r.IntN(rows))
		}
		cur().add(time.Since(start), err)
	}
}

// BenchmarkStartLatency: writers' latency before and during pgroll Start of
// an alter_column (NOT NULL with an up expression: a duplicate column,
// triggers, and a batched backfill of every row).
//
//	go test ./bench/db -run '^$' -bench StartLatency -benchtime 1x -timeout 20m
//
// Knobs: DB_BENCH_ROWS (1000000), DB_BENCH_WRITERS (4), DB_BENCH_BEFORE_S (5),
// DB_BENCH_BATCH (1000: pgroll's backfill batch size).
func BenchmarkStartLatency(b *testing.B) {
	rows := knob("DB_BENCH_ROWS", 1_000_000)
	writers := knob("DB_BENCH_WRITERS", 4)
	before := time.Duration(knob("DB_BENCH_BEFORE_S", 5)) * time.Second
	batch := knob("DB_BENCH_BATCH", 1000)
	srv := pgtest.Start(b)
	ctx := context.Background()
	for n := 0; n < b.N; n++ {
		bind := gantry.DatabaseBinding{App: "bench", Env: "prod", Engine: gantry.MigrationEnginePgroll,
			URL: srv.CreateDB(b, fmt.Sprintf("bench%d", n)), SnapshotDir: b.TempDir()}
		c := &dbchange.Changer{BinDir: srv.BinDir, Jobs: 2, BatchSize: batch}
		v1, v2 := migrations(b, "01_"), migrations(b, "")
		mustExpand(b, c, bind, v1, false)
		phys, err := sql.Open("postgres", bind.URL)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := phys.ExecContext(ctx, `INSERT INTO public.items (name, note)
			SELECT 'row' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' END FROM generate_series(1, $1) g`, rows); err != nil {
			b.Fatal(err)
		}
		if _, err := phys.ExecContext(ctx, `VACUUM ANALYZE public.items`); err != nil {
			b.Fatal(err)
		}
		phys.Close()
		b.Logf("loaded %d rows in %s", rows, time.Since(t0).Round(time.Millisecond))

		vars, err := c.ConnVars(ctx, bind, v1)
		if err != nil {
			b.Fatal(err)
		}
		app, err := sql.Open("postgres", vars["DATABASE_URL"])
		if err != nil {
			b.Fatal(err)
		}
		app.SetMaxOpenConns(writers)
		var (
			mu       sync.Mutex
			beforeS  = &sample{}
			duringS  = &sample{}
			cur      = beforeS
			stop     = make(chan struct{})
			wg       sync.WaitGroup
			getCur   = func() *sample { mu.Lock(); defer mu.Unlock(); return cur }
			switchTo = func(s *sample) { mu.Lock(); cur = s; mu.Unlock() }
		)
		b.ResetTimer()
		for range writers {
			wg.Add(1)
			go write(ctx, app, rows, stop, getCur, &wg)
		}
		time.Sleep(before) // a measurement window, not a synchronisation
		switchTo(duringS)
		t1 := time.Now()
		p := mustExpand(b, c, bind, v2, true)
		took := time.Since(t1)
		switchTo(&sample{})
		close(stop)
		wg.Wait()
		app.Close()
		b.StopTimer()

		b.ReportMetric(float64(beforeS.pct(0.99).Microseconds())/1000, "p99-before-ms")
		b.ReportMetric(float64(duringS.pct(0.99).Microseconds())/1000, "p99-during-ms")
		b.ReportMetric(float64(duringS.stall.Microseconds())/1000, "stall-during-ms")
		b.ReportMetric(took.Seconds(), "start-s")
		fmt.Printf("rows %d, writers %d, batch %d, migration %v\n", rows, writers, batch, p.Pending)
		fmt.Printf("before: %d statements in %s, p50 %s, p99 %s, max %s, errors %d\n", len(beforeS.lats), before,
			beforeS.pct(0.5), beforeS.pct(0.99), beforeS.stall, beforeS.errs)
		fmt.Printf("during Start (%s, incl. snapshot): %d statements, p50 %s, p99 %s, max %s, errors %d\n", took.Round(time.Millisecond),
			len(duringS.lats), duringS.pct(0.5), duringS.pct(0.99), duringS.stall, duringS.errs)
		if duringS.first != nil || beforeS.first != nil {
			fmt.Printf("first errors: before %v, during %v\n", beforeS.first, duringS.first)
		}
	}
}

func migrations(tb testing.TB, prefix string) fstest.MapFS {
	m := fstest.MapFS{}
	for _, f := range []string{"01_create_items.yaml", "02_note_not_null.yaml"} {
		if prefix != "" && f[:len(prefix)] != prefix {
			continue
		}
		data, err := os.ReadFile("testdata/" + f)
		if err != nil {
			tb.Fatal(err)
		}
		m[f] = &fstest.MapFile{Data: data}
	}
	return m
}

func mustExpand(tb testing.TB, c *dbchange.Changer, b gantry.DatabaseBinding, fsys fstest.MapFS, live bool) *gantry.MigrationPlan {
	tb.Helper()
	ctx := context.Background()
	p, err := c.Plan(ctx, b, gantry.PlanRequest{Release: &gantry.Release{ID: "bench"}, Migrations: fsys, Live: live})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Expand(ctx, b, p); err != nil {
		tb.Fatalf("expand %v: %v", p.Pending, err)
	}
	return p
}
