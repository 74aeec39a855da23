package manifest

import (
	"maps"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// requires reads services.<service>.requires: another service of the app
// or "app:<name>", each to a version constraint.
func (d *decoder) requires(n *yaml.Node, path string) map[string]string {
	fs := d.entries(n, path)
	if len(fs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, f := range fs {
		p := join(path, f.key.Value)
		name, isApp := strings.CutPrefix(f.key.Value, gantry.RequiredApp)
		what := "service"
		if isApp {
			what = "app"
		}
		if !d.checkName(f.key, p, what, name) {
			continue
		}
		v := resolve(f.val)
		if v.Kind != yaml.ScalarNode || isNull(v) {
			d.addf(v, p, "want a version constraint such as \">=1.1.0\", got %s", describe(v))
			continue
		}
		if _, err := gantry.ParseConstraint(v.Value); err != nil {
			d.addf(v, p, "%v", err)
			continue
		}
		out[f.key.Value] = v.Value
	}
	return out
}

// checkRequires reports a requirement on a service the app does not have,
// or on the service itself.
func (d *decoder) checkRequires(services map[string]*gantry.Service, at map[string]*yaml.Node, path string) {
	names := slices.Sorted(maps.Keys(services))
	for _, n := range names {
		// In order: problems at one spot (the service's key) are reported
		// in the order found, which a map's order would make vary.
		for _, target := range slices.Sorted(maps.Keys(services[n].Requires)) {
			if strings.HasPrefix(target, gantry.RequiredApp) {
				continue
			}
			p := join(join(join(path, n), "requires"), target)
			switch {
			case target == n:
				d.addf(at[n], p, "a service cannot require itself")
			case services[target] == nil:
				d.addf(at[n], p, "no service %q in this app%s; another app is written app:%s", target, didYouMean(target, names), target)
			}
		}
	}
}
