package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/gantry-dev/gantry"
)

// PutRoutes writes t as the next version of the route table, fenced like
// every write (update), and wakes the watchers once it is committed. Only
// this process writes the file while it serves, so an in-process wake-up
// reaches every watcher.
func (db *DB) PutRoutes(ctx context.Context, t *gantry.RouteTable) error {
	doc, err := json.Marshal(t.Routes)
	if err != nil {
		return gantry.Errorf(gantry.EINVALID, "route table: %v", err)
	}
	var version int64
	err = db.update(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO route_table (id, version, doc) VALUES (1, 1, ?)
			ON CONFLICT (id) DO UPDATE SET version = route_table.version + 1, doc = excluded.doc
			RETURNING version`, string(doc)).Scan(&version)
	})
	if err != nil {
		return internal("put routes", err)
	}
	t.Version = version
	db.routesChanged()
	return nil
}

// FindRoutes returns the route table, version 0 before the first.
func (db *DB) FindRoutes(ctx context.Context) (*gantry.RouteTable, error) {
	t := &gantry.RouteTable{Routes: []gantry.RouteEntry{}}
	var doc string
	err := db.read.QueryRowContext(ctx, `SELECT version, doc FROM route_table WHERE id = 1`).Scan(&t.Version, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return t, nil
	} else if err != nil {
		return nil, internal("find routes", err)
	}
	if err := json.Unmarshal([]byte(doc), &t.Routes); err != nil {
		return nil, internal("find routes", err)
	}
	return t, nil
}

// WaitRoutes returns the route table once its version is past after.
func (db *DB) WaitRoutes(ctx context.Context, after int64) (*gantry.RouteTable, error) {
	for {
		db.routesMu.Lock()
		if db.routesWake == nil {
			db.routesWake = make(chan struct{})
		}
		wake := db.routesWake
		db.routesMu.Unlock()
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

func (db *DB) routesChanged() {
	db.routesMu.Lock()
	defer db.routesMu.Unlock()
	if db.routesWake != nil {
		close(db.routesWake)
		db.routesWake = nil
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
	err = db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO routers (name, url, applied, failed, error, routes, seen) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Name, r.URL, r.Applied, r.Failed, r.Error, string(routes), timeArg(r.Seen))
		return err
	})
	return internal("put router report", err)
}

// DeleteRouterReport forgets a router.
func (db *DB) DeleteRouterReport(ctx context.Context, name string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM routers WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gantry.Errorf(gantry.ENOTFOUND, "router %q not found", name)
		}
		return nil
	})
	return internal("delete router report", err)
}

// ListRouterReports returns every router's last report, by name.
func (db *DB) ListRouterReports(ctx context.Context) ([]*gantry.RouterReport, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, url, applied, failed, error, routes, seen FROM routers ORDER BY name`)
	if err != nil {
		return nil, internal("list router reports", err)
	}
	defer rows.Close()
	var out []*gantry.RouterReport
	for rows.Next() {
		var rr gantry.RouterReport
		var routes string
		if err := rows.Scan(&rr.Name, &rr.URL, &rr.Applied, &rr.Failed, &rr.Error, &routes, timeCol{&rr.Seen}); err != nil {
			return nil, internal("list router reports", err)
		}
		if err := json.Unmarshal([]byte(routes), &rr.Routes); err != nil {
			return nil, internal("list router reports", err)
		}
		out = append(out, &rr)
	}
	return out, internal("list router reports", rows.Err())
}
