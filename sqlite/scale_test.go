package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// The big database: 100,000 deployments of 2 apps over 5 environments each
// (10,000 per environment), 4 steps each. It is seeded once per test binary,
// in one transaction, and shared by the benchmarks and TestScale.
const (
	bigDeployments = 100_000
	bigApps        = 2
	bigEnvs        = 5
	bigSteps       = 4
)

var big struct {
	once sync.Once
	dir  string
	db   *DB
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.db != nil {
		big.db.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// bigDB returns the seeded database, seeding it on first use.
func bigDB(tb testing.TB) *DB {
	tb.Helper()
	big.once.Do(func() {
		big.dir, big.err = os.MkdirTemp("", "gantry-sqlite-big-")
		if big.err != nil {
			return
		}
		big.db, big.err = Open(context.Background(), filepath.Join(big.dir, "gantry.db"))
		if big.err != nil {
			return
		}
		start := time.Now()
		big.err = seed(context.Background(), big.db)
		tb.Logf("seeded %d deployments, %d steps in %v", bigDeployments, bigDeployments*bigSteps, time.Since(start).Round(time.Millisecond))
	})
	if big.err != nil {
		tb.Fatalf("big database: %v", big.err)
	}
	return big.db
}

func bigApp(i int) string { return fmt.Sprintf("app%d", i%bigApps) }
func bigEnv(i int) string { return fmt.Sprintf("env%d", (i/bigApps)%bigEnvs) }

func seed(ctx context.Context, db *DB) error {
	for a := range bigApps {
		if err := db.CreateApp(ctx, &gantry.App{Name: bigApp(a)}); err != nil {
			return err
		}
		for e := range bigEnvs {
			env := &gantry.Environment{App: bigApp(a), Name: fmt.Sprintf("env%d", e)}
			env.Slot(gantry.SlotBlue).Instances = []gantry.Instance{{Service: "web", Addr: "127.0.0.1:4000", Handle: "{}"}}
			env.Active = gantry.SlotBlue
			if err := db.PutEnvironment(ctx, env); err != nil {
				return err
			}
		}
	}
	// One transaction and prepared statements: seeding goes at SQLite's
	// speed, not at one fsync per row.
	return db.update(ctx, func(tx *sql.Tx) error {
		dep, err := tx.PrepareContext(ctx, `INSERT INTO deployments
			(app, env, kind, release_id, version, from_release, from_env, slot, strategy, actor, state, error,
			 created_at, finished_at) VALUES (?, ?, 'deploy', ?, ?, '', '', 'blue', 'bluegreen', 'ci', ?, '', ?, ?)`)
		if err != nil {
			return err
		}
		step, err := tx.PrepareContext(ctx, `INSERT INTO steps (deployment_id, seq, name, state, detail, started_at, ended_at)
			VALUES (?, ?, ?, 'done', '', ?, ?)`)
		if err != nil {
			return err
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range bigDeployments {
			at := t0.Add(time.Duration(i) * time.Minute)
			state := gantry.DeploymentSucceeded
			if i%10 == 0 {
				state = gantry.DeploymentFailed
			}
			res, err := dep.ExecContext(ctx, bigApp(i), bigEnv(i), fmt.Sprintf("r%06d", i), "1.0.0", state,
				timeArg(at), timeArg(at.Add(time.Minute)))
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			for s := 1; s <= bigSteps; s++ {
				if _, err := step.ExecContext(ctx, id, s, "step", timeArg(at), timeArg(at)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// TestScale checks the promise behind the indices: with 100,000 deployments
// an environment's history and one deployment are read in well under 50 ms.
// The best of a few runs is compared, so that a busy machine does not fail
// it; TestQueryPlans is the exact check.
func TestScale(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("seeds 100,000 deployments; measures speed")
	}
	db := bigDB(t)
	ctx := t.Context()
	check := func(what string, fn func() error) {
		best := time.Hour
		for range 5 {
			start := time.Now()
			if err := fn(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			best = min(best, time.Since(start))
		}
		t.Logf("%s: best of 5 %v", what, best)
		if best > 50*time.Millisecond {
			t.Errorf("%s: best of 5 took %v, want under 50ms", what, best)
		}
	}
	check("ListDeployments(app, env, 20)", func() error {
		ds, err := db.ListDeployments(ctx, gantry.DeploymentFilter{App: "app1", Env: "env3", Limit: 20})
		if err == nil && len(ds) != 20 {
			err = fmt.Errorf("got %d deployments, want 20", len(ds))
		}
		return err
	})
	// No deployment is running: the worst case, unless an index has the state.
	check("ListDeployments(app, env, state, before, 20)", func() error {
		_, err := db.ListDeployments(ctx, gantry.DeploymentFilter{App: "app0", Env: "env1",
			State: gantry.DeploymentRunning, BeforeID: bigDeployments / 2, Limit: 20})
		return err
	})
	// Delivery metrics read a period: one day of one app, 720 deployments.
	check("ListDeploymentsIn(app, one day, 2 step names)", func() error {
		from := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		ds, err := db.ListDeploymentsIn(ctx, gantry.PeriodFilter{App: "app0", From: from, To: from.Add(24 * time.Hour), Steps: []string{"switch", "auto-rollback"}})
		if err == nil && len(ds) != 720 {
			err = fmt.Errorf("got %d deployments, want 720", len(ds))
		}
		return err
	})
	check("FindDeployment", func() error {
		d, err := db.FindDeployment(ctx, bigDeployments/3)
		if err == nil && len(d.Steps) != bigSteps {
			err = fmt.Errorf("got %d steps, want %d", len(d.Steps), bigSteps)
		}
		return err
	})
}

func BenchmarkListDeployments100k(b *testing.B) {
	db := bigDB(b)
	ctx := b.Context()
	f := gantry.DeploymentFilter{App: "app1", Env: "env3", Limit: 20}
	for b.Loop() {
		ds, err := db.ListDeployments(ctx, f)
		if err != nil || len(ds) != 20 {
			b.Fatalf("ListDeployments: %d, %v", len(ds), err)
		}
	}
}

func BenchmarkFindDeployment100k(b *testing.B) {
	db := bigDB(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		i++
		id := int64(i*7919%bigDeployments + 1) // spread over the whole history
		if _, err := db.FindDeployment(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindEnvironment(b *testing.B) {
	db := bigDB(b)
	ctx := b.Context()
	for b.Loop() {
		if _, err := db.FindEnvironment(ctx, "app0", "env2"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStep(b *testing.B) {
	db := MustOpen(b, filepath.Join(b.TempDir(), "gantry.db"))
	ctx := b.Context()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		b.Fatal(err)
	}
	d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
	if err := db.CreateDeployment(ctx, d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := db.AppendStep(ctx, d.ID, &gantry.Step{Name: "step", State: gantry.StepStarted}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListDeploymentsIn100k reads one day of one app (720
// deployments) out of 100,000, with their switch steps: what delivery
// metrics read, off deployments_app_time.
func BenchmarkListDeploymentsIn100k(b *testing.B) {
	db := bigDB(b)
	ctx := b.Context()
	from := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	f := gantry.PeriodFilter{App: "app0", From: from, To: from.Add(24 * time.Hour), Steps: []string{"switch", "auto-rollback"}}
	for b.Loop() {
		ds, err := db.ListDeploymentsIn(ctx, f)
		if err != nil || len(ds) != 720 {
			b.Fatalf("ListDeploymentsIn: %d, %v", len(ds), err)
		}
	}
}

// BenchmarkCreateDeployment is the cost of recording a deployment, which
// every index on deployments adds to.
func BenchmarkCreateDeployment(b *testing.B) {
	db := MustOpen(b, filepath.Join(b.TempDir(), "gantry.db"))
	ctx := b.Context()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
		if err := db.CreateDeployment(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}
