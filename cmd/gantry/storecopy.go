package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/postgres"
	"github.com/gantry-dev/gantry/sqlite"
	"github.com/spf13/cobra"
)

func init() { register(newStoreCmd) }

// copyTable is one table of the state as `store copy` moves it: the same
// columns on both stores (the PostgreSQL schema was made to match), read
// in an order that is also the order to compare in.
type copyTable struct {
	name    string
	columns []string
	// srcOrder orders the SQLite rows, dstOrderCols the PostgreSQL ones:
	// the same rows in the same order.
	srcOrder     string
	dstOrderCols []string
	// json names the columns holding JSON, compared by value: PostgreSQL's
	// jsonb does not keep the text as written.
	json map[string]bool
	// sequence names the SQLite AUTOINCREMENT counter to carry over, so
	// that an ID the source handed out once is never handed out again.
	sequence bool
}

// stateTables is every table of the state, parents before children.
var stateTables = []copyTable{
	{name: "apps", columns: []string{"name", "repo", "created_at"}, srcOrder: "name", dstOrderCols: []string{"name"}},
	{name: "releases", columns: []string{"id", "app", "version", "commit_sha", "ref", "artifacts", "manifest", "manifest_digest", "builder", "created_at", "committed_at"},
		// rowid is SQLite's insertion order, the tie-break of releases made
		// at one instant; inserted in it, PostgreSQL's seq keeps it.
		srcOrder: "rowid", dstOrderCols: []string{"seq"}, json: map[string]bool{"artifacts": true}},
	{name: "environments", columns: []string{"app", "name", "doc", "updated_at"}, srcOrder: "app, name", dstOrderCols: []string{"app", "name"}, json: map[string]bool{"doc": true}},
	{name: "deployments", columns: []string{"id", "app", "env", "kind", "release_id", "version", "from_release", "from_env", "slot", "strategy", "actor", "state", "error", "created_at", "finished_at", "pause_after", "only_service", "group_done"},
		srcOrder: "id", dstOrderCols: []string{"id"}, sequence: true},
	{name: "steps", columns: []string{"deployment_id", "seq", "name", "state", "detail", "started_at", "ended_at"}, srcOrder: "deployment_id, seq", dstOrderCols: []string{"deployment_id", "seq"}},
	{name: "locks", columns: []string{"app", "env", "holder", "operation", "reason", "deployment_id", "since", "expires"}, srcOrder: "app, env", dstOrderCols: []string{"app", "env"}},
	{name: "approvals", columns: []string{"id", "app", "env", "release_id", "fingerprint", "approver", "role", "comment", "created_at"}, srcOrder: "id", dstOrderCols: []string{"id"}, sequence: true},
	{name: "tokens", columns: []string{"name", "hash", "role", "envs", "created_by", "created_at"}, srcOrder: "name", dstOrderCols: []string{"name"}, json: map[string]bool{"envs": true}},
	{name: "secrets", columns: []string{"app", "env", "name", "sealed", "updated_at"}, srcOrder: "app, env, name", dstOrderCols: []string{"app", "env", "name"}},
	{name: "audit", columns: []string{"seq", "time", "actor", "operation", "app", "env", "release", "result", "code", "prev_hash", "hash"}, srcOrder: "seq", dstOrderCols: []string{"seq"}},
	{name: "audit_head", columns: []string{"id", "seq", "hash"}, srcOrder: "id", dstOrderCols: []string{"id"}},
}

// storeCopy is what `gantry store copy` needs to know.
type storeCopy struct {
	data, from, to       string
	secretsKey, auditKey string
	auditHead, destHead  string
	artifacts            bool // copy <data>/artifacts into the store too
	progress             io.Writer
}

// CopyReport is the summary of a copy, printed at the end (--json: as is).
type CopyReport struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Tables []CopiedTable `json:"tables"`
	// Audit is the verification of the copied chain on the destination,
	// under the same key and against the source's recorded head.
	Audit *gantry.AuditReport `json:"audit"`
	// AuditHead is the head file written for the destination, so that a
	// server started on it finds the chain anchored as before.
	AuditHead string `json:"audit_head,omitempty"`
	// Artifacts counts the artifacts copied into the store (--artifacts).
	Artifacts int     `json:"artifacts,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// CopiedTable says how many rows of a table were copied, and that every
// one of them reads back equal on the destination.
type CopiedTable struct {
	Name     string `json:"name"`
	Rows     int    `json:"rows"`
	Verified bool   `json:"verified"`
}

func newStoreCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Move the server's state between stores"}
	c := &storeCopy{}
	cp := &cobra.Command{
		Use:   "copy --to postgres://… [--data DIR | --from FILE]",
		Short: "Copy a stopped server's SQLite state into an empty PostgreSQL store, then verify it row by row and by the audit chain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.to == "" {
				return usagef("store copy: --to postgres://… is required")
			}
			c.progress = m.Stderr
			if c.from != "" && !cmd.Flags().Changed("data") {
				// The state file's directory is its --data: the audit head
				// file is named after it, and the socket of its server is in it.
				c.data = filepath.Dir(c.from)
			}
			r, err := c.run(cmd.Context())
			if err != nil {
				return err
			}
			return m.output(r, func(w io.Writer) { printCopyReport(w, r) })
		},
	}
	f := cp.Flags()
	f.StringVar(&c.data, "data", defaultDataDir, "data directory of the stopped server whose state is copied")
	f.StringVar(&c.from, "from", "", "the SQLite state file to copy (default <data>/state.db; with --from alone, --data is its directory)")
	f.StringVar(&c.to, "to", "", "the destination: a postgres://user@host:port/db URL (optional &schema=NAME, default gantry); its schema must be empty")
	f.StringVar(&c.secretsKey, "secrets-key", "", "the server's --secrets-key (default ~/.config/gantry/secrets.key); the audit key is looked for beside it")
	f.StringVar(&c.auditKey, "audit-key", "", "the server's --audit-key (default audit.key beside the secrets key)")
	f.StringVar(&c.auditHead, "audit-head", "", "the server's --audit-head: the source chain's recorded head (default its file beside the audit key)")
	f.BoolVar(&c.artifacts, "artifacts", false, "also copy <data>/artifacts into the store, for servers started with --artifacts store")
	f.StringVar(&c.destHead, "to-audit-head", "", "where to record the destination chain's head (default the file a server on --store finds beside the audit key)")
	cmd.AddCommand(cp)
	return cmd
}

func (c *storeCopy) run(ctx context.Context) (*CopyReport, error) {
	start := time.Now()
	if c.from == "" {
		c.from = filepath.Join(c.data, "state.db")
	}
	if err := c.refuseRunningServer(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.from); err != nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "store copy: the source state %s: %v", c.from, errors.Unwrap(err))
	}
	u, err := url.Parse(c.to)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, gantry.Errorf(gantry.EINVALID, "store copy: --to: want a postgres://user@host:port/db URL")
	}
	// Opening the source through the store brings its schema up to this
	// gantry's, which the column lists below are written for.
	src, err := sqlite.Open(ctx, c.from)
	if err != nil {
		return nil, err
	}
	src.Close()
	raw, err := sql.Open("sqlite", c.from)
	if err != nil {
		return nil, fmt.Errorf("store copy: open %s: %w", c.from, err)
	}
	defer raw.Close()
	tables, err := readSQLite(ctx, raw, c.progress)
	if err != nil {
		return nil, err
	}
	dst, err := openPostgres(ctx, u)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	fmt.Fprintf(c.progress, "writing %d tables to %s (one transaction)\n", len(tables), u.Redacted())
	if err := dst.Import(ctx, tables); err != nil {
		return nil, err
	}
	r := &CopyReport{From: c.from, To: u.Redacted()}
	for i, t := range stateTables {
		got, err := dst.Export(ctx, t.name, t.columns, t.dstOrderCols)
		if err != nil {
			return nil, err
		}
		if err := sameRows(t, tables[i].Rows, got); err != nil {
			return nil, gantry.Errorf(gantry.EFAILED, "store copy: verify: %v", err)
		}
		fmt.Fprintf(c.progress, "verified %-12s %6d rows equal\n", t.name, len(got))
		r.Tables = append(r.Tables, CopiedTable{Name: t.name, Rows: len(got), Verified: true})
	}
	if err := c.verifyAudit(ctx, dst, r); err != nil {
		return nil, err
	}
	if c.artifacts {
		if err := c.copyArtifacts(ctx, dst, r); err != nil {
			return nil, err
		}
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// refuseRunningServer refuses to copy the state of a server that still
// answers on its socket: it would go on writing to the source after the
// copy, and those writes would be lost.
func (c *storeCopy) refuseRunningServer() error {
	sock := filepath.Join(c.data, socketName)
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return gantry.Errorf(gantry.ECONFLICT, "store copy: a server is running on %s (%s answers); stop it first, so that nothing is written to the source during or after the copy", c.data, sock)
}

// readSQLite reads every table of the state in one read transaction, so
// that the tables are one consistent snapshot.
func readSQLite(ctx context.Context, db *sql.DB, progress io.Writer) ([]postgres.Table, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var out []postgres.Table
	for _, t := range stateTables {
		pt := postgres.Table{Name: t.name, Columns: t.columns}
		q := "SELECT " + joinCols(t.columns) + " FROM " + t.name + " ORDER BY " + t.srcOrder
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("store copy: read %s: %w", t.name, err)
		}
		for rows.Next() {
			vals := make([]any, len(t.columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store copy: read %s: %w", t.name, err)
			}
			pt.Rows = append(pt.Rows, vals)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store copy: read %s: %w", t.name, err)
		}
		if t.sequence {
			var seq sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = ?`, t.name).Scan(&seq)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("store copy: read %s's sequence: %w", t.name, err)
			}
			pt.NextID = seq.Int64 + 1
		}
		fmt.Fprintf(progress, "read     %-12s %6d rows\n", t.name, len(pt.Rows))
		out = append(out, pt)
	}
	return out, nil
}

func joinCols(cols []string) string {
	s := ""
	for i, c := range cols {
		if i > 0 {
			s += ", "
		}
		s += `"` + c + `"`
	}
	return s
}
