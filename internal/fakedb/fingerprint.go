package fakedb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Migrate stands for an app's own migration on the database at url: its
// schema becomes schema (any name; "" is the empty schema). Tests call it
// from the command or the start that migrates.
func (c *Changer) Migrate(url, schema string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.db(gantry.DatabaseBinding{URL: url}).st.schema = schema
}

// Schema returns the schema name Migrate last set (or a restore put back).
func (c *Changer) Schema(url string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.db(gantry.DatabaseBinding{URL: url}).st.schema
}

// Fingerprint digests the schema as dbchange does the catalog: the
// migrations applied and the app's own schema.
func (c *Changer) Fingerprint(ctx context.Context, b gantry.DatabaseBinding) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "fingerprint", App: b.App, Env: b.Env}, nil)
	st := c.db(b).st
	h := sha256.Sum256([]byte(strings.Join(st.applied, ",") + "|" + st.schema))
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

// Record appends rec to the ledger.
func (c *Changer) Record(ctx context.Context, b gantry.DatabaseBinding, rec *gantry.MigrationRecord) (*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "record", App: b.App, Env: b.Env, ReleaseID: rec.ReleaseID}, nil)
	r := *rec
	return c.ledgerAdd(b, c.db(b), &r), nil
}

// Ledger returns the ledger, oldest first.
func (c *Changer) Ledger(ctx context.Context, b gantry.DatabaseBinding) ([]*gantry.MigrationRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*gantry.MigrationRecord
	for _, r := range c.db(b).ledger {
		cp := *r
		out = append(out, &cp)
	}
	return out, nil
}
