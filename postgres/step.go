package postgres

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry"
	"github.com/jackc/pgx/v5"
)

// AppendStep journals s as the deployment's next step and sets s.Seq (1, 2,
// …); a zero StartedAt is set to now. It returns after the transaction has
// committed, and a committed transaction is durable in PostgreSQL (see DB),
// so the orchestrator may act on the step when it returns.
func (db *DB) AppendStep(ctx context.Context, deploymentID int64, s *gantry.Step) error {
	startedAt := s.StartedAt
	if startedAt.IsZero() {
		startedAt = db.now()
	}
	s2 := *s
	s2.StartedAt = startedAt
	err := db.update(ctx, func(tx pgx.Tx) error {
		// Locking the deployment's row serialises appends to one
		// deployment (another server's included), so MAX+1 cannot hand
		// out a seq twice; appends to other deployments do not wait.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM deployments WHERE id = $1 FOR UPDATE`, deploymentID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return gantry.Errorf(gantry.ENOTFOUND, "deployment #%d not found", deploymentID)
		} else if err != nil {
			return err
		}
		return appendStep(ctx, tx, deploymentID, &s2)
	})
	if err != nil {
		return internal("append step", err)
	}
	s.Seq, s.StartedAt = s2.Seq, startedAt
	return nil
}

// appendStep inserts s as the deployment's next step and sets s.Seq; the
// caller keeps others from appending to the deployment meanwhile.
func appendStep(ctx context.Context, tx pgx.Tx, deploymentID int64, s *gantry.Step) error {
	return tx.QueryRow(ctx, `INSERT INTO steps (deployment_id, seq, name, state, detail, started_at, ended_at)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM steps WHERE deployment_id = $1
		RETURNING seq`,
		deploymentID, s.Name, s.State, s.Detail, timeArg(s.StartedAt), timeArg(s.EndedAt)).Scan(&s.Seq)
}

// UpdateStep records step s.Seq's state, detail and end time.
func (db *DB) UpdateStep(ctx context.Context, deploymentID int64, s *gantry.Step) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE steps SET state = $1, detail = $2, ended_at = $3
			WHERE deployment_id = $4 AND seq = $5`,
			s.State, s.Detail, timeArg(s.EndedAt), deploymentID, s.Seq)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gantry.Errorf(gantry.ENOTFOUND, "step %d of deployment #%d not found", s.Seq, deploymentID)
		}
		return nil
	})
	return internal("update step", err)
}

func listSteps(ctx context.Context, q querier, deploymentID int64) ([]gantry.Step, error) {
	rows, err := q.Query(ctx, `SELECT seq, name, state, detail, started_at, ended_at
		FROM steps WHERE deployment_id = $1 ORDER BY seq`, deploymentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r pgx.Rows) (gantry.Step, error) {
		var s gantry.Step
		err := r.Scan(&s.Seq, &s.Name, &s.State, &s.Detail, timeCol{&s.StartedAt}, timeCol{&s.EndedAt})
		return s, err
	})
}
