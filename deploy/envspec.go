package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

// specFor returns the settings of environment name for a release: those the
// release's manifest declares for it, or else those recorded with the
// environment (a clone, or an environment displaced by a rename, is not in
// the manifest). ok is false when neither exists.
func specFor(m *gantry.Manifest, env *gantry.Environment, name string) (*gantry.EnvironmentSpec, bool) {
	if s, ok := m.Environments[name]; ok {
		return s, true
	}
	if env != nil && env.Name == name && len(env.Spec.Hosts) > 0 {
		s := env.Spec
		return &s, true
	}
	return nil, false
}

// renameHosts derives an environment's hosts under a new name: a host whose
// first label is the old name gets the new one (test.shop.example.com →
// testnew.shop.example.com); any other host gets the new name as a prefix
// (shop.example.com → testnew.shop.example.com), so that a copy never claims
// the hosts of what it was copied from.
func renameHosts(hosts []string, oldName, newName string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		wild := strings.HasPrefix(h, "*.")
		base := strings.TrimPrefix(h, "*.")
		if first, rest, ok := strings.Cut(base, "."); ok && first == oldName {
			base = newName + "." + rest
		} else {
			base = newName + "." + base
		}
		if wild {
			base = "*." + base
		}
		out = append(out, base)
	}
	return out
}

// cloneNamespace is the namespace of a clone of src named dst: src's with
// its environment's name replaced (shop-prod → shop-testnew), else the
// default <app>-<dst>, numbered when another environment of the app has it
// already (a namespace holds one environment of an app; a renamed
// environment keeps its namespace, so the name may be taken).
func (o *Orchestrator) cloneNamespace(ctx context.Context, src *gantry.Environment, dst string) (string, error) {
	base := src.App + "-" + dst
	if prefix, ok := strings.CutSuffix(src.Spec.Runtime.Namespace, "-"+src.Name); ok {
		base = prefix + "-" + dst
	}
	envs, err := o.Store.ListEnvironments(ctx, src.App)
	if err != nil {
		return "", err
	}
	ns := base
	for i := 2; slices.ContainsFunc(envs, func(e *gantry.Environment) bool { return e.Spec.Runtime.Namespace == ns }); i++ {
		ns = fmt.Sprintf("%s-%d", base, i)
	}
	if err := gantry.ValidName("namespace", ns); err != nil {
		return "", gantry.Errorf(gantry.EINVALID, "namespace of the clone %s: %s", dst, gantry.ErrorMessage(err))
	}
	return ns, nil
}

// classify says whether going from version a to b is a migration (the major
// or minor version differs) or a deployment (W1/W2 of the seeds).
func classify(from, to string) string {
	if from == "" {
		return "deployment"
	}
	if majorMinor(from) != majorMinor(to) {
		return "migration"
	}
	return "deployment"
}

func majorMinor(v string) string {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}
