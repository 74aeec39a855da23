package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gantry-dev/gantry"
)

// AppendStep journals s as the deployment's next step and sets s.Seq (1, 2,
// …); a zero StartedAt is set to now. When it returns, the step is on disk
// (see DB on durability), so the orchestrator may act on it.
func (db *DB) AppendStep(ctx context.Context, deploymentID int64, s *gantry.Step) error {
	startedAt := s.StartedAt
	if startedAt.IsZero() {
		startedAt = db.now()
	}
	s2 := *s
	s2.StartedAt = startedAt
	err := db.update(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM deployments WHERE id = ?`, deploymentID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
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

// appendStep inserts s as the deployment's next step and sets s.Seq. The
// write transaction is the only writer, so MAX+1 cannot race.
func appendStep(ctx context.Context, tx *sql.Tx, deploymentID int64, s *gantry.Step) error {
	return tx.QueryRowContext(ctx, `INSERT INTO steps (deployment_id, seq, name, state, detail, started_at, ended_at)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ? FROM steps WHERE deployment_id = ?
		RETURNING seq`,
		deploymentID, s.Name, s.State, s.Detail, timeArg(s.StartedAt), timeArg(s.EndedAt), deploymentID).Scan(&s.Seq)
}

// UpdateStep records step s.Seq's state, detail and end time.
func (db *DB) UpdateStep(ctx context.Context, deploymentID int64, s *gantry.Step) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE steps SET state = ?, detail = ?, ended_at = ?
			WHERE deployment_id = ? AND seq = ?`,
			s.State, s.Detail, timeArg(s.EndedAt), deploymentID, s.Seq)
		if err != nil {
			return err
		}
		return mustAffect(res, gantry.Errorf(gantry.ENOTFOUND, "step %d of deployment #%d not found", s.Seq, deploymentID))
	})
	return internal("update step", err)
}

const stepsOfDeployment = `SELECT seq, name, state, detail, started_at, ended_at
	FROM steps WHERE deployment_id = ? ORDER BY seq`

func listSteps(ctx context.Context, q querier, deploymentID int64) ([]gantry.Step, error) {
	rows, err := q.QueryContext(ctx, stepsOfDeployment, deploymentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []gantry.Step
	for rows.Next() {
		var s gantry.Step
		if err := rows.Scan(&s.Seq, &s.Name, &s.State, &s.Detail, timeCol{&s.StartedAt}, timeCol{&s.EndedAt}); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
