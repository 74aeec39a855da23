package postgres

import (
	"context"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

var _ gantry.DeliveryStore = (*DB)(nil)

// RememberDelivery records a webhook delivery, or returns ECONFLICT when
// it was recorded already; deliveries older than forgetBefore go first.
func (db *DB) RememberDelivery(ctx context.Context, source, id string, at, forgetBefore time.Time) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE at < $1`, timeArg(forgetBefore)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO deliveries (source, id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, source, id, timeArg(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gantry.Errorf(gantry.ECONFLICT, "delivery %s of %s was received already", id, source)
		}
		return nil
	})
	return internal("remember delivery", err)
}
