package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.DeliveryStore = (*DB)(nil)

// RememberDelivery records a webhook delivery, or returns ECONFLICT when
// it was recorded already; deliveries older than forgetBefore go first.
func (db *DB) RememberDelivery(ctx context.Context, source, id string, at, forgetBefore time.Time) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE at < ?`, timeArg(forgetBefore)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (source, id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, source, id, timeArg(at))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gantry.Errorf(gantry.ECONFLICT, "delivery %s of %s was received already", id, source)
		}
		return nil
	})
	return internal("remember delivery", err)
}
