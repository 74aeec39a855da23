package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// TestQueryPlans fills a store with 100,000 deployments and checks that
// every filter of ListDeployments is answered from an index in id order,
// with no sort of the history, so `gantry status` and `history` do not slow
// down as it grows (issue 16's figure: ≤ 50 ms at 100,000).
func TestQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 deployments")
	}
	db := MustOpen(t, mustServer(t), "plans")
	ctx := t.Context()
	for _, app := range []string{"shop", "api", "web", "ops"} {
		if err := db.CreateApp(ctx, &gantry.App{Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	// One statement: generate_series is much faster than 100,000 calls.
	// Nearly all finished, a few running, one a minute, as in a real
	// history.
	if _, err := db.pool.Exec(ctx, `INSERT INTO deployments
		(app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor, state, error, created_at)
		SELECT (ARRAY['shop','api','web','ops'])[1 + i % 4], (ARRAY['test','prod','staging','testnew','qa'])[1 + i / 4 % 5],
			'deploy', 'r' || i, '1.0.' || i, '', '', 'blue', 'bluegreen', 'alice',
			CASE WHEN i % 5000 = 0 THEN 'running' ELSE 'succeeded' END, '',
			to_char(timestamp '2026-09-01 00:00:00' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS".000000000Z"')
		FROM generate_series(1, 100000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE deployments`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []gantry.DeploymentFilter{
		{},
		{App: "shop", Env: "test", Limit: 20},
		{App: "shop", Env: "test", BeforeID: 50000},
		{App: "shop"},
		{Env: "prod"},
		{App: "shop", Env: "test", State: gantry.DeploymentRunning},
		{State: gantry.DeploymentRunning},
	} {
		q, args := listDeploymentsQuery(f)
		rows, err := db.pool.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatalf("EXPLAIN %+v: %v", f, err)
		}
		plan, err := collect(rows, func(r pgx.Rows) (string, error) {
			var line string
			return line, r.Scan(&line)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(plan, "\n")
		if strings.Contains(got, "Sort") || !strings.Contains(got, "Index") {
			t.Errorf("ListDeployments(%+v): want an index scan in id order and no sort; got plan\n%s", f, got)
		}
		start := time.Now()
		ds, err := db.ListDeployments(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ListDeployments(%+v): %d in %v", f, len(ds), time.Since(start))
	}
	// A period of deployments (delivery metrics) is read off a time index
	// of the app.
	for _, env := range []string{"", "prod"} {
		rows, err := db.pool.Query(ctx, "EXPLAIN "+periodDeployments, "shop", env, "2026-10-01T00:00:00.000000000Z", "2026-10-02T00:00:00.000000000Z")
		if err != nil {
			t.Fatalf("EXPLAIN period of %q: %v", env, err)
		}
		plan, err := collect(rows, func(r pgx.Rows) (string, error) {
			var line string
			return line, r.Scan(&line)
		})
		if err != nil {
			t.Fatal(err)
		}
		// A sort of the period's own rows is fine; a scan of the history is not.
		if got := strings.Join(plan, "\n"); strings.Contains(got, "Seq Scan") || !strings.Contains(got, "_time") {
			t.Errorf("ListDeploymentsIn(env %q): want a time index, no scan of the history; got plan\n%s", env, got)
		}
		start := time.Now()
		ds, err := db.ListDeploymentsIn(ctx, gantry.PeriodFilter{App: "shop", Env: env, From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
			To: time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), Steps: []string{"switch"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ListDeploymentsIn(one day of shop, env %q): %d in %v", env, len(ds), time.Since(start))
	}
}
