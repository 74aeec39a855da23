package deploy

import (
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// checkFreeze refuses a change of environment env inside a freeze window of
// any of specs (nil ones are skipped), unless a break-glass reason is given.
func (o *Orchestrator) checkFreeze(env, breakGlass string, specs ...*gantry.EnvironmentSpec) error {
	now := o.now()
	for _, s := range specs {
		if s == nil {
			continue
		}
		for _, w := range s.Freeze {
			if now.Before(w.From) || !now.Before(w.To) || breakGlass != "" {
				continue
			}
			reason := ""
			if w.Reason != "" {
				reason = " (" + w.Reason + ")"
			}
			return refuse(GateFreeze, "the same command with --break-glass REASON (it is recorded)",
				"environment %q is frozen from %s until %s%s", env, w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), reason)
		}
	}
	return nil
}

// policyRecords is what policy has to say about op, journaled with its
// deployment's record (see start): a break-glass reason, and whether it
// is a deployment or a migration. Clone, rename and continue have none.
func policyRecords(op *op) []record {
	switch op.kind {
	case gantry.KindClone, gantry.KindRename, gantry.KindContinue:
		return nil
	}
	var rs []record
	if op.breakGlass != "" {
		rs = append(rs, record{name: "break-glass", detail: op.breakGlass, result: "by " + op.actor + ": " + op.breakGlass})
	}
	from := ""
	if op.current != nil {
		if a := op.current.ActiveSlot(); a != nil {
			from = a.Version
		}
	}
	class := classify(from, op.rel.Version)
	detail := fmt.Sprintf("%s: %s → %s", class, orNone(from), op.rel.Version)
	return append(rs, record{name: "classify", detail: detail, result: detail})
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}
