package postgres

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// Table is rows of one of the store's tables, in a form that does not
// depend on where they come from: what `gantry store copy` moves from
// another store. Values are int64, string, []byte or nil, in Columns' order.
type Table struct {
	Name    string
	Columns []string
	Rows    [][]any
	// NextID, when set, is the identity value the table hands out next, so
	// that an ID never used in the source (AUTOINCREMENT's high-water mark)
	// is not handed out here either.
	NextID int64
}

// copyTables are the tables Import accepts, in the order their foreign keys
// need, with the identity column (if any) whose values are kept as given.
var copyTables = []struct{ name, identity string }{
	{"apps", ""}, {"releases", ""}, {"environments", ""}, {"deployments", "id"}, {"steps", ""},
	{"locks", ""}, {"approvals", "id"}, {"tokens", ""}, {"secrets", ""}, {"audit", ""}, {"audit_head", ""},
}

// Import writes tables into an empty store, rows as they are (IDs, times,
// sealed secrets, audit hashes), in one transaction: a copy lands whole or
// not at all. It refuses (ECONFLICT) a store that holds any row already.
// Releases are inserted in the order given, which becomes their tie-break
// order (the seq column).
func (db *DB) Import(ctx context.Context, tables []Table) error {
	byName := map[string]Table{}
	for _, t := range tables {
		byName[t.Name] = t
	}
	return internal("import", db.update(ctx, func(tx pgx.Tx) error {
		// Nothing else may write while the copy checks and fills the store.
		for _, ct := range copyTables {
			if _, err := tx.Exec(ctx, `LOCK TABLE `+ct.name+` IN EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		for _, ct := range copyTables {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+ct.name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return gantry.Errorf(gantry.ECONFLICT, "the destination store (schema %s) is not empty: table %s has %d rows; copy into an empty schema", db.schema, ct.name, n)
			}
		}
		for _, ct := range copyTables {
			t, ok := byName[ct.name]
			if !ok {
				continue
			}
			if len(t.Rows) > 0 {
				if err := insertRows(ctx, tx, t, ct.identity != ""); err != nil {
					return fmt.Errorf("table %s: %w", t.Name, err)
				}
			}
			if ct.identity != "" {
				if err := bumpIdentity(ctx, tx, ct.name, ct.identity, t.NextID); err != nil {
					return fmt.Errorf("table %s: %w", t.Name, err)
				}
			}
		}
		return nil
	}))
}

func insertRows(ctx context.Context, tx pgx.Tx, t Table, overriding bool) error {
	q := `INSERT INTO ` + t.Name + ` (`
	ph := ""
	for i, c := range t.Columns {
		if i > 0 {
			q += ", "
			ph += ", "
		}
		q += pgx.Identifier{c}.Sanitize()
		ph += fmt.Sprintf("$%d", i+1)
	}
	q += `)`
	if overriding {
		// The IDs are the source's: deployments are named by them.
		q += ` OVERRIDING SYSTEM VALUE`
	}
	q += ` VALUES (` + ph + `)`
	b := &pgx.Batch{}
	for _, r := range t.Rows {
		b.Queue(q, r...)
	}
	return tx.SendBatch(ctx, b).Close()
}

// bumpIdentity makes the identity sequence of table hand out, next, the
// larger of next and one past the highest ID present.
func bumpIdentity(ctx context.Context, tx pgx.Tx, table, col string, next int64) error {
	_, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2),
		GREATEST($3::bigint, (SELECT COALESCE(MAX(`+col+`), 0) + 1 FROM `+table+`)), false)`, table, col, next)
	return err
}

// Export reads the named columns of table ordered by the orderBy columns,
// for a comparison with the rows that were imported. JSON columns come back
// as their text.
func (db *DB) Export(ctx context.Context, table string, columns, orderBy []string) ([][]any, error) {
	known := false
	for _, ct := range copyTables {
		known = known || ct.name == table
	}
	if !known {
		return nil, gantry.Errorf(gantry.EINVALID, "export: no table %q", table)
	}
	q := `SELECT `
	for i, c := range columns {
		if i > 0 {
			q += ", "
		}
		q += pgx.Identifier{c}.Sanitize()
		switch c {
		case "artifacts", "doc", "envs":
			q += "::text" // JSONB: the text, not a decoded map
		}
	}
	q += ` FROM ` + table + ` ORDER BY `
	for i, c := range orderBy {
		if i > 0 {
			q += ", "
		}
		q += pgx.Identifier{c}.Sanitize()
	}
	rows, err := db.pool.Query(ctx, q)
	if err != nil {
		return nil, internal("export "+table, err)
	}
	out, err := collect(rows, func(r pgx.Rows) ([]any, error) { return r.Values() })
	return out, internal("export "+table, err)
}
