package dbchange_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestWritesSteadyWhileCatalogsChange: catalog writes in the app's
// database (ANALYZE, as autovacuum runs it, and DDL) are not the app's
// rows: while another session analyzes and comments a table without
// writing a row, every reading of the rows written since a snapshot is 0.
func TestWritesSteadyWhileCatalogsChange(t *testing.T) {
	t.Parallel()
	c := newChanger(t)
	ctx := ctxT(t)
	b := MustBinding(t, "prod", gantry.MigrationEngineCommand)
	mustExec(t, b.URL, `CREATE TABLE entries (id int PRIMARY KEY, n int NOT NULL, note text);
		INSERT INTO entries SELECT g, 0 FROM generate_series(1, 200) g`)
	waitReported(t, b.URL, map[string]int64{"entries": 200})
	snap, err := c.Snapshot(ctx, b, "manual")
	if err != nil || snap.Writes == nil {
		t.Fatalf("snapshot: %v, %+v", err, snap)
	}
	db, err := sql.Open("postgres", b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Catalog writes only: pg_statistic, pg_description, pg_class.
			if _, err := db.ExecContext(ctx, `ANALYZE entries; COMMENT ON TABLE entries IS 'n'`); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(8 * time.Second)
	readings := 0
	for time.Now().Before(deadline) {
		got, err := c.WritesSince(ctx, b, snap)
		if err != nil {
			t.Fatal(err)
		}
		readings++
		if !got.Known || got.Rows != 0 {
			t.Errorf("reading %d: %+v while only catalogs changed, want 0 known", readings, got)
			break
		}
	}
	close(stop)
	<-stopped
	t.Logf("%d readings", readings)
}
