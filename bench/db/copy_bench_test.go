package dbbench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/dbchange"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// BenchmarkCopy copies a database of DB_BENCH_COPY_MB (1024) megabytes by
// pg_dump/pg_restore -j2 and by CREATE DATABASE … TEMPLATE.
//
//	go test ./bench/db -run '^$' -bench Copy -benchtime 1x -timeout 30m
func BenchmarkCopy(b *testing.B) {
	mb := knob("DB_BENCH_COPY_MB", 1024)
	srv := pgtest.Start(b)
	ctx := context.Background()
	src := gantry.DatabaseBinding{App: "bench", Env: "prod", Engine: gantry.MigrationEnginePgroll,
		URL: srv.CreateDB(b, "copysrc"), SnapshotDir: b.TempDir()}
	c := &dbchange.Changer{BinDir: srv.BinDir, Jobs: 2}
	mustExpand(b, c, src, migrations(b, "01_"), false)
	db, err := sql.Open("postgres", src.URL)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	// Rows of about 230 bytes on disk; two tables so that -j2 has two to share.
	rows := mb * 1024 * 1024 / 230 / 2
	for _, q := range []string{
		`INSERT INTO public.items (name, note) SELECT md5(g::text) || md5((g+1)::text) || md5((g+2)::text), md5((g*7)::text) || md5((g*11)::text) || md5((g*13)::text) FROM generate_series(1, $1) g`,
		`CREATE TABLE public.items2 AS SELECT * FROM public.items`,
		`ALTER TABLE public.items2 ADD PRIMARY KEY (id)`,
		`VACUUM ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, rows)
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	if err := db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	db.Close()
	fmt.Printf("source: %d MB in %d rows x2, loaded in %s\n", size>>20, rows, time.Since(t0).Round(time.Second))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for _, method := range []string{gantry.CopyDump, gantry.CopyTemplate} {
			dst := src
			dst.Env, dst.SnapshotDir = "copy", b.TempDir()
			dst.URL = srv.URLFor(fmt.Sprintf("copy_%s_%d", method, n))
			rec, err := c.Copy(ctx, gantry.CopyRequest{From: src, To: dst, Method: method})
			if err != nil {
				b.Fatalf("copy by %s: %v", method, err)
			}
			fmt.Printf("copy by %s: %s\n", method, rec.Took.Round(time.Millisecond))
			b.ReportMetric(rec.Took.Seconds(), method+"-s")
		}
	}
}
