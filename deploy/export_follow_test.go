package deploy

import (
	"context"

	"github.com/gantry-dev/gantry"
)

// FollowSlotsOnce is one reconcile of FollowSlots, for the tests.
func (o *Orchestrator) FollowSlotsOnce(ctx context.Context, app, env string, sf gantry.SlotFollower) error {
	return o.followSlots(ctx, app, env, sf)
}
