package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// PutRoutes writes t as the next version of the route table, fenced like
// every write (update), and notifies the watchers of every server on the
// store in the same transaction: a NOTIFY is delivered at COMMIT.
func (db *DB) PutRoutes(ctx context.Context, t *gantry.RouteTable) error {
	doc, err := json.Marshal(t.Routes)
	if err != nil {
		return gantry.Errorf(gantry.EINVALID, "route table: %v", err)
	}
	var version int64
	err = db.update(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO route_table (id, version, doc) VALUES (1, 1, $1)
			ON CONFLICT (id) DO UPDATE SET version = route_table.version + 1, doc = excluded.doc
			RETURNING version`, string(doc)).Scan(&version); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, db.routesChannel(), strconv.FormatInt(version, 10))
		return err
	})
	if err != nil {
		return internal("put routes", err)
	}
	t.Version = version
	return nil
}

// FindRoutes returns the route table, version 0 before the first.
func (db *DB) FindRoutes(ctx context.Context) (*gantry.RouteTable, error) {
	t := &gantry.RouteTable{Routes: []gantry.RouteEntry{}}
	var doc string
	err := db.pool.QueryRow(ctx, `SELECT version, doc FROM route_table WHERE id = 1`).Scan(&t.Version, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	} else if err != nil {
		return nil, internal("find routes", err)
	}
	if err := json.Unmarshal([]byte(doc), &t.Routes); err != nil {
		return nil, internal("find routes", err)
	}
	return t, nil
}

// WaitRoutes returns the route table once its version is past after. It
// waits on the store's one listening connection (LISTEN), which wakes every
// waiter on each NOTIFY of PutRoutes, whichever server wrote.
func (db *DB) WaitRoutes(ctx context.Context, after int64) (*gantry.RouteTable, error) {
	for {
		// Take the wake-up channel before reading, so that a version
		// written between the read and the wait still wakes this waiter.
		wake := db.routeWatch.channel(db)
		t, err := db.FindRoutes(ctx)
		if err != nil || t.Version > after {
			return t, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// routesChannel is the NOTIFY channel of this store's route table: one per
// schema, so that stores side by side in one database do not wake each other.
func (db *DB) routesChannel() string { return "gantry_routes_" + db.schema }

// routeWatch holds one connection that LISTENs for route table changes and
// closes the current wake channel on each, so any number of watchers cost
// one connection. It starts with the first watcher.
type routeWatch struct {
	mu      sync.Mutex
	wake    chan struct{}
	started bool
	done    chan struct{} // closed when listen returns
}

func (w *routeWatch) channel(db *DB) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake == nil {
		w.wake = make(chan struct{})
	}
	if !w.started {
		w.started = true
		w.done = make(chan struct{})
		go w.listen(db)
	}
	return w.wake
}

// broadcast wakes every watcher, which then reads the table again.
func (w *routeWatch) broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake != nil {
		close(w.wake)
	}
	w.wake = make(chan struct{})
}

// listen keeps a LISTEN connection until the store is closed. When the
// connection breaks it wakes everyone (they read the table again, so
// nothing written meanwhile is missed) and connects again.
func (w *routeWatch) listen(db *DB) {
	defer close(w.done)
	for !db.closed.Load() {
		// A broken connection is retried; the watchers, woken, read the
		// table themselves in the meantime.
		_ = w.listenOnce(db)
		w.broadcast()
		select {
		case <-db.closing:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop waits for the listening connection to be given back.
func (w *routeWatch) stop() {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (w *routeWatch) listenOnce(db *DB) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-db.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{db.routesChannel()}.Sanitize()); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `UNLISTEN *`)
	// Listening now: a change made before LISTEN took effect is found by
	// the watchers' next read.
	w.broadcast()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		w.broadcast()
	}
}

// PutRouterReport records a router's report; Seen is now.
func (db *DB) PutRouterReport(ctx context.Context, r *gantry.RouterReport) error {
	if r.Name == "" {
		return gantry.Errorf(gantry.EINVALID, "a router report needs the router's name")
	}
	r.Seen = db.now()
	routes, err := json.Marshal(r.Routes)
	if err != nil {
		return gantry.Errorf(gantry.EINVALID, "router report: %v", err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO routers (name, url, applied, failed, error, routes, seen) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, applied = excluded.applied, failed = excluded.failed,
			error = excluded.error, routes = excluded.routes, seen = excluded.seen`,
		r.Name, r.URL, r.Applied, r.Failed, r.Error, string(routes), timeArg(r.Seen))
	return internal("put router report", err)
}

// DeleteRouterReport forgets a router.
func (db *DB) DeleteRouterReport(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM routers WHERE name = $1`, name)
	if err == nil && tag.RowsAffected() == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "router %q not found", name)
	}
	return internal("delete router report", err)
}

// ListRouterReports returns every router's last report, by name.
func (db *DB) ListRouterReports(ctx context.Context) ([]*gantry.RouterReport, error) {
	rows, err := db.pool.Query(ctx, `SELECT name, url, applied, failed, error, routes, seen FROM routers ORDER BY name`)
	if err != nil {
		return nil, internal("list router reports", err)
	}
	rs, err := collect(rows, func(r pgx.Rows) (*gantry.RouterReport, error) {
		var rr gantry.RouterReport
		var routes string
		if err := r.Scan(&rr.Name, &rr.URL, &rr.Applied, &rr.Failed, &rr.Error, &routes, timeCol{&rr.Seen}); err != nil {
			return nil, err
		}
		return &rr, json.Unmarshal([]byte(routes), &rr.Routes)
	})
	return rs, internal("list router reports", err)
}
