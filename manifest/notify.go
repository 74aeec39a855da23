package manifest

import (
	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"gopkg.in/yaml.v3"
)

// notify decodes the top-level notify list: where deployment events go. It
// runs after the environments, whose names a target may be limited to.
func (d *decoder) notify(n *yaml.Node, path string, envs map[string]*gantry.EnvironmentSpec) []gantry.NotifyTarget {
	var out []gantry.NotifyTarget
	for i, item := range d.list(n, path) {
		p := index(path, i)
		fs := d.mapping(item, p, "notify[]")
		slack, hasSlack := fs["slack"]
		wh, hasWebhook := fs["webhook"]
		var t gantry.NotifyTarget
		var ok bool
		switch {
		case hasSlack && hasWebhook:
			d.addf(wh.key, p, "a notification target is either slack or webhook, not both")
			continue
		case hasSlack:
			t.Slack, ok = d.webhookURL(slack.val, join(p, "slack"))
		case hasWebhook:
			t.Webhook, ok = d.webhookURL(wh.val, join(p, "webhook"))
		default:
			if isNull(item) || item.Kind == yaml.MappingNode {
				d.addf(item, p, "a notification target needs slack or webhook")
			}
			continue
		}
		if f, has := fs["environments"]; has {
			t.Environments = d.stringList(f.val, join(p, "environments"), func(item *yaml.Node, ip, name string) bool {
				if envs != nil && envs[name] == nil {
					d.addf(item, ip, "unknown environment %q%s", clip(name), didYouMean(name, sortedNames(envs)))
					return false
				}
				return true
			})
		}
		if ok {
			out = append(out, t)
		}
	}
	return out
}

// urlPlaceholder is ${NAME} in a webhook or notification URL: the hook
// package fills it from the environment's vars and secrets when it sends,
// so that a token need not be committed with the manifest.
var urlPlaceholder = lazyre.New(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// placeholderOnly reports whether s is one placeholder and nothing else: a
// whole URL kept as a secret, such as a Slack incoming webhook.
func placeholderOnly(s string) bool {
	loc := urlPlaceholder.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}

// withoutPlaceholders stands a plain word in for each placeholder, so the
// rest of the URL can be checked.
func withoutPlaceholders(s string) string {
	return urlPlaceholder.ReplaceAllString(s, "x")
}
