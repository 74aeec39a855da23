package fakedb

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
)

// Write stands for the app writing rows to the database at url: they
// count as written since every snapshot taken before.
func (c *Changer) Write(url string, rows int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.db(gantry.DatabaseBinding{URL: url}).writes.Rows += rows
}

// ResetStats stands for a reset of the server's statistics: the count of
// writes since an earlier snapshot becomes unknown.
func (c *Changer) ResetStats(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.db(gantry.DatabaseBinding{URL: url})
	c.seq++
	d.writes = gantry.WriteCount{Epoch: fmt.Sprint(c.seq)}
}

// WritesSince counts the rows Write added since snap.
func (c *Changer) WritesSince(ctx context.Context, b gantry.DatabaseBinding, snap *gantry.Snapshot) (gantry.WritesSince, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(Call{Op: "writes-since", App: b.App, Env: b.Env}, nil)
	now := c.db(b).writes
	if snap == nil || snap.Writes == nil || snap.Writes.Epoch != now.Epoch || now.Rows < snap.Writes.Rows {
		return gantry.WritesSince{}, nil
	}
	return gantry.WritesSince{Rows: now.Rows - snap.Writes.Rows, Known: true}, nil
}
