package manifest

import (
	"path"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// Values of the trigger and preview keys.
var (
	triggerEvents  = []string{gantry.TriggerPush, gantry.TriggerMergeRequest}
	triggerActions = []string{gantry.TriggerBuild, gantry.TriggerDeploy, gantry.TriggerPreview, gantry.TriggerNothing}
	previewData    = []string{gantry.PreviewDataNone, gantry.PreviewDataCopy}
)

// Preview defaults.
const (
	defaultPreviewTTL  = 72 * time.Hour
	defaultPreviewMax  = 5
	defaultPreviewHost = "{branch}.preview.{app}.localhost"
)

// triggers decodes the top-level triggers list: what a push to which branch
// (or a merge request into it) does. It runs after environments and
// previews, which a trigger may name.
func (d *decoder) triggers(n *yaml.Node, path string, m *gantry.Manifest) []gantry.Trigger {
	var out []gantry.Trigger
	for i, item := range d.list(n, path) {
		p := index(path, i)
		fs := d.mapping(item, p, "triggers[]")
		// A problem is reported where it is; the manifest is then refused
		// as a whole, so a bad trigger need not be left out of out.
		t := gantry.Trigger{On: gantry.TriggerPush}
		if f, has := fs["on"]; has {
			t.On, _ = d.oneOf(f.val, join(p, "on"), triggerEvents)
		}
		if f, has := fs["branch"]; has {
			if s, ok := d.nonEmpty(f.val, join(p, "branch")); ok && !validGlob(s) {
				d.addf(resolve(f.val), join(p, "branch"), "invalid branch pattern %q: a glob such as main or releases/*", clip(s))
			} else {
				t.Branch = s
			}
		}
		f, has := d.require(fs, item, p, "do")
		if !has {
			continue
		}
		var ok bool
		if t.Do, ok = d.oneOf(f.val, join(p, "do"), triggerActions); !ok {
			continue
		}
		env, hasEnv := fs["env"]
		switch {
		case t.Do == gantry.TriggerDeploy && !hasEnv:
			d.addf(item, p, "do: deploy needs env: the environment to deploy to")
			ok = false
		case t.Do != gantry.TriggerDeploy && hasEnv:
			d.addf(env.key, join(p, "env"), "env applies only to do: deploy")
			ok = false
		case hasEnv:
			if t.Env, ok = d.str(env.val, join(p, "env")); ok && m.Environments != nil && m.Environments[t.Env] == nil {
				d.addf(resolve(env.val), join(p, "env"), "unknown environment %q%s", clip(t.Env), didYouMean(t.Env, sortedNames(m.Environments)))
				ok = false
			}
		}
		if t.Do == gantry.TriggerPreview && m.Previews == nil {
			d.addf(f.val, join(p, "do"), "do: preview needs a previews: section saying how a preview is made")
			ok = false
		}
		if ok {
			out = append(out, t)
		}
	}
	return out
}

// validGlob reports whether s is a pattern path.Match accepts.
func validGlob(s string) bool {
	_, err := path.Match(s, "")
	return err == nil
}

// previews decodes the previews section: how a preview environment is made.
func (d *decoder) previews(n *yaml.Node, path string, m *gantry.Manifest) *gantry.PreviewSpec {
	fs := d.mapping(n, path, "previews")
	p := &gantry.PreviewSpec{Host: defaultPreviewHost, TTL: defaultPreviewTTL, Max: defaultPreviewMax, Data: previewData[0]}
	if f, ok := d.require(fs, n, path, "from"); ok {
		if s, ok := d.str(f.val, join(path, "from")); ok {
			if m.Environments != nil && m.Environments[s] == nil {
				d.addf(resolve(f.val), join(path, "from"), "unknown environment %q%s", clip(s), didYouMean(s, sortedNames(m.Environments)))
			}
			p.From = s
		}
	}
	if f, ok := fs["host"]; ok {
		if s, ok := d.nonEmpty(f.val, join(path, "host")); ok {
			if !strings.Contains(s, "{branch}") && !strings.Contains(s, "{name}") {
				d.addf(resolve(f.val), join(path, "host"), "invalid preview host %q: it needs {branch} or {name}, so that each preview has a host of its own", clip(s))
			} else {
				// Check it as a host with each placeholder standing for a label.
				sample := strings.NewReplacer("{branch}", "b", "{name}", "n", "{app}", "a").Replace(s)
				if _, ok := d.host(f.val, join(path, "host"), sample, ""); ok {
					p.Host = s
				}
			}
		}
	}
	if f, ok := fs["ttl"]; ok {
		p.TTL, _ = d.duration(f.val, join(path, "ttl"), false)
	}
	if f, ok := fs["max"]; ok {
		p.Max, _ = d.integer(f.val, join(path, "max"), 1, 100)
	}
	if f, ok := fs["data"]; ok {
		if s, ok := d.oneOf(f.val, join(path, "data"), previewData); ok {
			p.Data = s
			if s == gantry.PreviewDataCopy && m.Database == nil {
				d.addf(resolve(f.val), join(path, "data"), "data: copy needs a database: section")
			}
		}
	}
	if f, ok := fs["post_copy"]; ok {
		if s, ok := d.nonEmpty(f.val, join(path, "post_copy")); ok {
			if p.Data != gantry.PreviewDataCopy {
				d.addf(f.key, join(path, "post_copy"), "post_copy runs in a copied database: it needs data: copy")
			}
			p.PostCopy = s
		}
	}
	return p
}
