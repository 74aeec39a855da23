package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

// checkNeeds is the last check before an operation changes anything:
// the release's artifacts are in the store, and what the environment needs
// to run it is set on the server: every secret its configuration
// references, and DATABASE_URL when the release declares a database. One
// error names every secret missing, so that no deploy stops a warm standby
// or lets an app migrate its schema, and no clone creates an environment
// or copies a database, only to fail on it afterwards.
func (o *Orchestrator) checkNeeds(ctx context.Context, op *op) error {
	if op.rel == nil || op.spec == nil || op.flip || op.abort || op.resume != nil || op.kind == gantry.KindRename {
		return nil // nothing starts with a configuration it did not run with
	}
	if _, err := o.verifyArtifacts(ctx, op.rel); err != nil {
		return err
	}
	names := slices.Clone(op.spec.Secrets)
	if o.Databases != nil && op.m != nil && op.m.Database != nil && !slices.Contains(names, DatabaseURLSecret) {
		names = append(names, DatabaseURLSecret)
	}
	var missing, set []string
	for _, name := range names {
		if _, ok := o.secretValue(op.app, op.env, name); !ok {
			missing = append(missing, name)
			set = append(set, fmt.Sprintf("gantry secret set %s %s", op.env, name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return gantry.Errorf(gantry.EINVALID, "environment %q needs %d secret(s) that are not set on the server: %s; nothing was changed. Set them first: %s",
		op.env, len(missing), strings.Join(missing, ", "), strings.Join(set, "; "))
}
