package deploy_test

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
)

// aegee is a monorepo whose core requires its mailer and the billing app.
func aegee() App {
	return App{Name: "aegee",
		Services: []Svc{
			{Name: "core", Requires: `{mailer: ">=1.1.0", "app:billing": ">=2.0.0"}`},
			{Name: "mailer", Route: "{path: /mail}"},
		},
		Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
}

// TestGateRequires: a deploy or promotion that would leave a requirement
// false, within the app or across apps and in either direction, is
// refused before anything starts, naming both versions.
func TestGateRequires(t *testing.T) {
	h := NewHarness(t, Options{})
	app := aegee()
	billing := App{Name: "billing", Services: []Svc{{Name: "web"}}, Envs: []Env{{Name: "test"}, {Name: "prod"}}}
	good := h.MustRelease(t, app, Rel{Version: "3.0.0", Versions: map[string]string{"core": "2.4.0", "mailer": "1.2.0"}})
	old := h.MustRelease(t, app, Rel{Version: "3.1.0", Versions: map[string]string{"core": "2.5.0", "mailer": "1.0.0"}})
	b15 := h.MustRelease(t, billing, Rel{Version: "1.5.0"})
	b21 := h.MustRelease(t, billing, Rel{Version: "2.1.0"})

	// billing has no test environment yet: nothing to check it against.
	h.MustDeploy(t, "aegee", "test", good)

	before := h.state(t, "aegee")
	_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "aegee", Env: "test", Release: old.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "aegee", before, err, deploy.GateRequires, "a release whose mailer is >=1.1.0")
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "core 2.5.0 requires mailer >=1.1.0") || !strings.Contains(msg, "mailer 1.0.0") {
		t.Errorf("refusal %q: want it to name core's and mailer's versions", msg)
	}

	// The other direction: billing may not go below what core needs.
	before = h.state(t, "billing")
	_, err = h.O.Deploy(h.Ctx, gantry.DeployRequest{App: "billing", Env: "test", Release: b15.ID, Actor: "dev"}, nil)
	h.mustRefuse(t, "billing", before, err, deploy.GateRequires, "")
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "core 2.4.0 (app aegee") || !strings.Contains(msg, "billing would be 1.5.0") {
		t.Errorf("refusal %q: want it to name core's version and billing's", msg)
	}
	h.MustDeploy(t, "billing", "test", b21)

	// A promotion onto an environment where billing is too old.
	h.MustDeploy(t, "billing", "prod", b15)
	before = h.state(t, "aegee")
	_, err = h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "aegee", From: "test", To: "prod", Actor: "dev"}, nil)
	h.mustRefuse(t, "aegee", before, err, deploy.GateRequires, "bring app billing to a version >=2.0.0 on prod first")
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "billing runs 1.5.0") || !strings.Contains(msg, "core 2.4.0") {
		t.Errorf("refusal %q: want both versions", msg)
	}
	h.MustDeploy(t, "billing", "prod", b21)
	if _, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: "aegee", From: "test", To: "prod", Actor: "dev"}, nil); err != nil {
		t.Fatalf("promotion once billing is 2.1.0: %v", err)
	}

	// A rollback is held to the same rule: billing's warm 1.5.0 on prod,
	// by a flip back or pinned by version, would break core there.
	for _, to := range []string{"", "1.5.0"} {
		before = h.state(t, "billing")
		_, err = h.O.Rollback(h.Ctx, gantry.RollbackRequest{App: "billing", Env: "prod", To: to, Actor: "dev"}, nil)
		h.mustRefuse(t, "billing", before, err, deploy.GateRequires, "")
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "core 2.4.0 (app aegee") || !strings.Contains(msg, "billing would be 1.5.0") {
			t.Errorf("rollback to %q refused with %q: want core's version and billing's", to, msg)
		}
	}
}
