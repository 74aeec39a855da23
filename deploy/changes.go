package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
)

// A deploy restarts only what changed: an instance records the fingerprint
// of what it was started with (gantry.Instance.Config), and a service whose
// running instances all match what the release would start is left
// running. On an environment where every service is unchanged a deploy
// starts nothing at all; with the restart strategy only the changed
// services are restarted, group by group. A blue-green candidate starts
// every service, since it is verified and switched as a whole, and the
// journal says which services changed.

// instanceConfig fingerprints how an instance of s runs art, at the
// service's version, with vars. The version counts because an app may read
// it (GANTRY_VERSION) from one artifact built for several versions; Gantry's
// other variables (its commit and the siblings' addresses) are left out:
// they follow from the rest.
func instanceConfig(art gantry.Artifact, s *gantry.Service, version string, vars map[string]string) string {
	run := *s
	run.Build, run.Docker, run.Order = nil, nil, 0 // how it was built or rolled out is not how it runs
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", art.Digest, version)
	b, _ := json.Marshal(run)
	h.Write(b)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if !strings.HasPrefix(k, "GANTRY_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "\n%s=%d:%s", k, len(vars[k]), vars[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// serviceChanges compares what rel would start on env with what slot runs:
// kept are the services whose every instance would be started the same way
// (and as many), changed the others; gone are the services slot runs that
// m no longer has.
func (o *Orchestrator) serviceChanges(env *gantry.Environment, slot *gantry.Slot, rel *gantry.Release, m *gantry.Manifest) (kept, changed, gone []string, err error) {
	vars, err := o.instanceVars(env, rel, slot.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	running := map[string][]gantry.Instance{}
	for _, inst := range slot.Instances {
		running[inst.Service] = append(running[inst.Service], inst)
	}
	for _, s := range m.ServicesInOrder() {
		want := instanceConfig(rel.Artifacts[s.Name], s, rel.ServiceVersion(s.Name), vars)
		same := len(running[s.Name]) == s.Instances
		for _, inst := range running[s.Name] {
			same = same && inst.Config == want
		}
		if same {
			kept = append(kept, s.Name)
		} else {
			changed = append(changed, s.Name)
		}
		delete(running, s.Name)
	}
	for n := range running {
		gone = append(gone, n)
	}
	sort.Strings(gone)
	return kept, changed, gone, nil
}

// leaveRunning completes a deploy of a release that would start every
// service of the active slot as it runs: nothing is started or stopped,
// and the slot is recorded as serving rel.
func (o *Orchestrator) leaveRunning(ctx context.Context, r *run, env *gantry.Environment, active *gantry.Slot, rel *gantry.Release, kept []string) error {
	r.d.Slot = active.Name
	return r.step(ctx, "unchanged", fmt.Sprintf("slot %s (%s)", active.Name, active.Version), func() (string, error) {
		for i := range active.Instances {
			if active.Instances[i].ReleaseID == "" {
				active.Instances[i].ReleaseID = active.ReleaseID
			}
		}
		active.ReleaseID, active.Version = rel.ID, rel.Version
		return fmt.Sprintf("same artifacts and configuration: left running %s; nothing restarted", strings.Join(kept, ", ")), o.saveEnv(ctx, env)
	})
}

// unchangedStep compares the release with what the active slot runs (a
// deploy of the whole release onto a running environment). When nothing
// changed it completes the deploy (leaveRunning) and returns every
// service; with the restart strategy it returns the services to leave
// running; otherwise it journals what changed and returns nil.
func (o *Orchestrator) unchangedStep(ctx context.Context, r *run, op *op, env *gantry.Environment, active *gantry.Slot) (map[string]bool, error) {
	if active == nil || len(active.Instances) == 0 || op.only != "" {
		return nil, nil
	}
	kept, changed, gone, err := o.serviceChanges(env, active, op.rel, op.m)
	if err != nil {
		return nil, err
	}
	if len(changed) == 0 && len(gone) == 0 && o.sameMigrations(ctx, env.App, active.ReleaseID, op.rel) && !o.contractWaits(ctx, env, op.m) {
		keep := map[string]bool{}
		for _, k := range kept {
			keep[k] = true
		}
		return keep, o.leaveRunning(ctx, r, env, active, op.rel, kept)
	}
	if op.strategy != gantry.StrategyRestart || len(kept) == 0 || len(gone) > 0 {
		if len(kept) > 0 {
			_ = r.step(ctx, "changes", fmt.Sprintf("changed: %s; unchanged: %s", strings.Join(append(changed, gone...), ", "), strings.Join(kept, ", ")), func() (string, error) {
				return "a " + op.strategy + " candidate starts every service: the release is verified and switched as a whole", nil
			})
		}
		return nil, nil
	}
	keep := map[string]bool{}
	for _, k := range kept {
		keep[k] = true
	}
	return keep, nil
}

// sameMigrations says whether rel brings the database changes the release
// running on the slot brought: a release that only adds a migration
// changes the environment even when its services run as before.
func (o *Orchestrator) sameMigrations(ctx context.Context, app, running string, rel *gantry.Release) bool {
	if running == rel.ID {
		return true
	}
	cur, err := o.Store.FindRelease(ctx, app, running)
	if err != nil {
		return false
	}
	return cur.Artifacts[gantry.MigrationsArtifact].Digest == rel.Artifacts[gantry.MigrationsArtifact].Digest
}

// contractWaits says whether a migration waits for its contract on a slot
// that still needs the old schema: a deploy of the same release then
// replaces that slot, so that the contract runs, rather than leaving
// everything as it is.
func (o *Orchestrator) contractWaits(ctx context.Context, env *gantry.Environment, m *gantry.Manifest) bool {
	if o.Databases == nil || m.Database == nil || m.Database.AppMigrates() {
		return false
	}
	b, err := o.migBinding(env, m)
	if err != nil || b == nil {
		return false
	}
	st, err := o.Databases.Status(ctx, *b)
	if err != nil || st.Active == "" {
		return false
	}
	return gantry.OldSchemaSlot(env, st.ActiveRelease) != nil
}
