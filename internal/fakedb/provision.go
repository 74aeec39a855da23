package fakedb

import (
	"context"

	"github.com/gantry-dev/gantry"
)

var _ gantry.DatabaseProvisioner = (*Changer)(nil)

// CreateDatabase makes an empty database for b (a preview's).
func (c *Changer) CreateDatabase(ctx context.Context, b gantry.DatabaseBinding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.db(b)
	c.record(Call{Op: "create-database", App: b.App, Env: b.Env}, nil)
	return nil
}

// DropDatabase forgets b's database.
func (c *Changer) DropDatabase(ctx context.Context, b gantry.DatabaseBinding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.dbs, b.URL)
	c.record(Call{Op: "drop-database", App: b.App, Env: b.Env}, nil)
	return nil
}
