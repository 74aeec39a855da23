package manifest

import (
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"gopkg.in/yaml.v3"
)

const (
	defaultDriver    = "process"
	defaultApprovals = 1
	maxApprovals     = 100
	// prodEnv is the environment whose default host is the app's own name.
	prodEnv = "prod"
)

// envRefs keeps where things were written, for the checks that need every
// environment at hand: promote_from targets and hosts claimed twice.
type envRefs struct {
	key         *yaml.Node
	promoteFrom *yaml.Node
	hosts       map[string]hostRef // expanded host -> where it was written
}

type hostRef struct {
	node *yaml.Node
	path string
}

func (d *decoder) environments(n *yaml.Node, path, app string) map[string]*gantry.EnvironmentSpec {
	fs := d.entries(n, path)
	if len(fs) == 0 {
		if isNull(resolve(n)) || resolve(n).Kind == yaml.MappingNode {
			d.addf(resolve(n), path, "declare at least one environment")
		}
		return nil
	}
	out := map[string]*gantry.EnvironmentSpec{}
	refs := map[string]*envRefs{}
	var order []string
	for _, f := range fs {
		p := join(path, f.key.Value)
		if !d.checkName(f.key, p, "environment", f.key.Value) {
			continue
		}
		r := &envRefs{key: f.key, hosts: map[string]hostRef{}}
		out[f.key.Value] = d.environment(f.key.Value, f.val, p, app, r)
		refs[f.key.Value] = r
		order = append(order, f.key.Value)
	}
	d.checkPromotion(out, refs, path)
	d.checkHostsUnique(out, refs, order, path)
	return out
}

func (d *decoder) environment(name string, n *yaml.Node, path, app string, r *envRefs) *gantry.EnvironmentSpec {
	e := &gantry.EnvironmentSpec{
		Runtime:  gantry.RuntimeSpec{Driver: defaultDriver},
		Strategy: gantry.StrategyBlueGreen,
		KeepWarm: gantry.DefaultKeepWarm,
	}
	fs := d.mapping(n, path, "environments.<env>")
	if f, ok := fs["hosts"]; ok {
		p := join(path, "hosts")
		for i, item := range d.list(f.val, p) {
			ip := index(p, i)
			s, ok := d.str(item, ip)
			if !ok {
				continue
			}
			h, ok := d.host(item, ip, s, name)
			if !ok {
				continue
			}
			if _, dup := r.hosts[h]; dup {
				d.addf(item, ip, "host %q is listed twice", h)
				continue
			}
			r.hosts[h] = hostRef{item, ip}
			e.Hosts = append(e.Hosts, h)
		}
		if v := resolve(f.val); isNull(v) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			d.addf(v, p, "list at least one host, or leave hosts out for the default")
		}
	}
	if f, ok := fs["runtime"]; ok {
		d.runtime(f.val, join(path, "runtime"), &e.Runtime)
	}
	if f, ok := fs["strategy"]; ok {
		if s, ok := d.oneOf(f.val, join(path, "strategy"), strategies); ok {
			e.Strategy = s
		}
	}
	if f, ok := fs["keep_warm"]; ok {
		if v, ok := d.duration(f.val, join(path, "keep_warm"), true); ok {
			e.KeepWarm = v
		}
	}
	if f, ok := fs["vars"]; ok {
		e.Vars = d.stringMap(f.val, join(path, "vars"), func(k *yaml.Node, p string) bool {
			return d.varName(k, p, k.Value)
		})
		d.varPlaceholders(f.val, join(path, "vars"))
	}
	if f, ok := fs["secrets"]; ok {
		p := join(path, "secrets")
		e.Secrets = d.stringList(f.val, p, func(item *yaml.Node, ip, s string) bool {
			if !d.varName(item, ip, s) {
				return false
			}
			if _, both := e.Vars[s]; both {
				d.addf(item, ip, "%s is declared both in vars and in secrets; keep one", s)
				return false
			}
			return true
		})
	}
	if f, ok := fs["promote_from"]; ok {
		if s, ok := d.nonEmpty(f.val, join(path, "promote_from")); ok {
			e.PromoteFrom = s
			r.promoteFrom = resolve(f.val)
		}
	}
	if f, ok := fs["approvals"]; ok {
		e.Approvals = d.approvals(f.val, join(path, "approvals"))
	}
	if f, ok := fs["hotfix_approvals"]; ok {
		e.HotfixApprovals = d.approvalsOf(f.val, join(path, "hotfix_approvals"), "environments.<env>.hotfix_approvals")
	}
	if f, ok := fs["freeze"]; ok {
		e.Freeze = d.freeze(f.val, join(path, "freeze"))
	}
	if f, ok := fs["migrations_via_clone"]; ok {
		e.MigrationsViaClone, _ = d.boolean(f.val, join(path, "migrations_via_clone"))
	}
	if f, ok := fs["watch"]; ok {
		e.Watch = d.watch(f.val, join(path, "watch"))
		d.checkWatch(e, f.key, join(path, "watch"))
	}
	if f, ok := fs["canary"]; ok {
		e.Canary = d.canary(f.val, join(path, "canary"))
	}
	d.checkCanary(e, fs, path)

	// Defaults that depend on names, applied once the keys are read.
	if _, ok := fs["hosts"]; !ok && app != "" {
		h := name + "." + app + ".localhost"
		if name == prodEnv {
			h = app + ".localhost"
		}
		e.Hosts = []string{h}
		r.hosts[h] = hostRef{r.key, join(path, "hosts")}
	}
	if e.Runtime.Driver == "kubernetes" && e.Runtime.Namespace == "" && app != "" {
		e.Runtime.Namespace = app + "-" + name
	}
	return e
}

var hostLabel = lazyre.New(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// host expands {env} in s and checks that the result is a host name the
// router can match: lowercase DNS labels, optionally behind a "*." wildcard.
func (d *decoder) host(n *yaml.Node, path, s, env string) (string, bool) {
	h := strings.ReplaceAll(s, "{env}", env)
	fail := func(why string) (string, bool) {
		d.addf(n, path, "invalid host %q: %s", clip(s), why)
		return "", false
	}
	switch {
	case h == "":
		return fail("empty")
	case strings.ContainsAny(h, "{}"):
		return fail("the only placeholder is {env}")
	case strings.Contains(h, "://") || strings.Contains(h, "/"):
		return fail("write a host name only, without scheme or path")
	case strings.Contains(h, ":"):
		return fail("write a host name only, without a port; the router's listen address sets the port")
	case h != strings.ToLower(h):
		return fail("host names are lowercase")
	case len(h) > 253:
		return fail("longer than 253 characters")
	}
	name := strings.TrimPrefix(h, "*.")
	for _, label := range strings.Split(name, ".") {
		if label == "*" {
			return fail("a wildcard is allowed only as a leading \"*.\"")
		}
		if len(label) > 63 || !hostLabel.MatchString(label) {
			return fail("each dot-separated part needs 1-63 letters, digits or '-', not starting or ending with '-'")
		}
	}
	return h, true
}

// varName checks an environment variable name that an app may set.
func (d *decoder) varName(n *yaml.Node, path, s string) bool {
	switch {
	case !varNamePattern.MatchString(s):
		d.addf(n, path, "invalid variable name %q: use uppercase letters, digits and '_', not starting with a digit", clip(s))
		return false
	case reservedVar(s):
		d.addf(n, path, "%s is set by Gantry and cannot be declared (PORT, HOST and names starting with %s are reserved)", s, reservedVarPrefix)
		return false
	}
	return true
}

func (d *decoder) runtime(n *yaml.Node, path string, r *gantry.RuntimeSpec) {
	fs := d.mapping(n, path, "environments.<env>.runtime")
	if f, ok := fs["driver"]; ok {
		if s, ok := d.oneOf(f.val, join(path, "driver"), drivers); ok {
			r.Driver = s
		}
	}
	if f, ok := fs["registry"]; ok {
		p := join(path, "registry")
		if r.Driver == defaultDriver {
			d.addf(f.key, p, "registry is used by the docker and kubernetes drivers, not by %s", r.Driver)
		} else if s, ok := d.nonEmpty(f.val, p); ok {
			if strings.Contains(s, "://") || strings.ContainsAny(s, " \t@") {
				d.addf(resolve(f.val), p, "invalid registry %q: want host[:port][/path], without a scheme", clip(s))
			} else {
				r.Registry = s
			}
		}
	}
	if f, ok := fs["namespace"]; ok {
		p := join(path, "namespace")
		if r.Driver != "kubernetes" {
			d.addf(f.key, p, "namespace is used by the kubernetes driver only")
		} else if s, ok := d.str(f.val, p); ok && d.checkName(resolve(f.val), p, "namespace", s) {
			r.Namespace = s
		}
	}
	if f, ok := fs["routing"]; ok {
		p := join(path, "routing")
		if r.Driver != "kubernetes" {
			d.addf(f.key, p, "routing is used by the kubernetes driver only")
		} else if s, ok := d.oneOf(f.val, p, routings); ok {
			r.Routing = s
		}
	}
	if f, ok := fs["gateway"]; ok {
		p := join(path, "gateway")
		if r.Routing != gantry.RoutingHTTPRoute {
			d.addf(f.key, p, "gateway is used with routing: httproute only")
		} else if s, ok := d.str(f.val, p); ok {
			ns, name, cut := strings.Cut(s, "/")
			if !cut {
				ns, name = "", s
			}
			if (!cut || d.checkName(resolve(f.val), p, "namespace", ns)) && d.checkName(resolve(f.val), p, "gateway", name) {
				r.Gateway = s
			}
		}
	} else if r.Routing == gantry.RoutingHTTPRoute {
		d.addf(n, path, "routing: httproute needs gateway: <namespace>/<name> (the Gateway the HTTPRoutes attach to)")
	}
	if f, ok := fs["traffic"]; ok {
		p := join(path, "traffic")
		if r.Driver != "kubernetes" {
			d.addf(f.key, p, "traffic is used by the kubernetes driver only (the other runtimes are always behind Gantry's router)")
		} else if s, ok := d.oneOf(f.val, p, traffics); ok {
			r.Traffic = s
			if s == gantry.TrafficRouter && r.Routing != "" && r.Routing != gantry.RoutingNone {
				d.addf(resolve(f.val), p, "traffic: router serves the hosts through Gantry's router, so the cluster's routing objects would compete for them: set routing: none, or leave routing out")
			}
		}
	}
	if f, ok := fs["images"]; ok {
		p := join(path, "images")
		if s, ok := d.oneOf(f.val, p, imageWays); ok {
			switch {
			case s == gantry.ImagesImageStream && r.Driver != "kubernetes":
				d.addf(f.key, p, "imagestream tags an OpenShift image stream: kubernetes driver only")
			case s == gantry.ImagesImageStream && r.Registry != "":
				d.addf(f.key, p, "imagestream runs images from the cluster's own registry: remove registry: %s, or say images: registry to copy images there", r.Registry)
			default:
				r.Images = s
			}
		}
	}
	d.persistClaim(fs, path, r)
}

var (
	// storageClassPattern is a Kubernetes object name (a DNS subdomain).
	storageClassPattern = lazyre.New(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// sizePattern is a Kubernetes quantity of bytes, with a binary or
	// decimal suffix: 500Mi, 10Gi, 1T.
	sizePattern = lazyre.New(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)
)

// persistClaim decodes what a persistent directory's claim asks for on
// Kubernetes: storage_class and persist_size, and the image that copies
// them into a clone, copy_image.
func (d *decoder) persistClaim(fs map[string]field, path string, r *gantry.RuntimeSpec) {
	for _, k := range []struct {
		key string
		to  *string
		bad func(string) string // what is wrong with a value, "" when nothing
	}{
		{"storage_class", &r.StorageClass, func(s string) string {
			if len(s) > 253 || !storageClassPattern.MatchString(s) {
				return fmt.Sprintf("invalid storage class name %q: lowercase letters, digits, '-' and '.', at most 253 characters", clip(s))
			}
			return ""
		}},
		{"persist_size", &r.PersistSize, func(s string) string {
			if !sizePattern.MatchString(s) || strings.Trim(s, "0.KMGTPEik") == "" {
				return fmt.Sprintf("invalid size %q: want a positive number of bytes with a suffix such as 500Mi, 10Gi or 1T", clip(s))
			}
			return ""
		}},
		{"copy_image", &r.CopyImage, func(s string) string {
			if strings.ContainsAny(s, " \t\n") {
				return fmt.Sprintf("invalid image reference %q: it contains white space", clip(s))
			}
			return ""
		}},
	} {
		f, ok := fs[k.key]
		if !ok {
			continue
		}
		p := join(path, k.key)
		if r.Driver != "kubernetes" {
			d.addf(f.key, p, "%s is used by the kubernetes driver only (persistent directories are host directories elsewhere)", k.key)
		} else if s, ok := d.nonEmpty(f.val, p); ok {
			if msg := k.bad(s); msg != "" {
				d.addf(resolve(f.val), p, "%s", msg)
			} else {
				*k.to = s
			}
		}
	}
}

var rolePattern = lazyre.New(`^[a-z0-9][a-z0-9_-]*$`)

func (d *decoder) approvals(n *yaml.Node, path string) *gantry.ApprovalPolicy {
	return d.approvalsOf(n, path, "environments.<env>.approvals")
}

func (d *decoder) approvalsOf(n *yaml.Node, path, schema string) *gantry.ApprovalPolicy {
	a := &gantry.ApprovalPolicy{Required: defaultApprovals}
	fs := d.mapping(n, path, schema)
	if f, ok := fs["required"]; ok {
		a.Required, _ = d.integer(f.val, join(path, "required"), 0, maxApprovals)
	}
	if f, ok := fs["roles"]; ok {
		a.Roles = d.stringList(f.val, join(path, "roles"), func(item *yaml.Node, p, s string) bool {
			if !rolePattern.MatchString(s) {
				d.addf(item, p, "invalid role %q: use lowercase letters, digits, '_' and '-'", clip(s))
				return false
			}
			return true
		})
	}
	return a
}

// freeze decodes freeze windows: RFC 3339 times, from before to.
func (d *decoder) freeze(n *yaml.Node, path string) []gantry.FreezeWindow {
	var out []gantry.FreezeWindow
	for i, item := range d.list(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		fs := d.mapping(item, ip, "environments.<env>.freeze[]")
		var w gantry.FreezeWindow
		ok := true
		for _, k := range []string{"from", "to"} {
			f, present := fs[k]
			if !present {
				d.addf(item, ip, "a freeze window needs %q (an RFC 3339 time such as 2026-12-20T00:00:00Z)", k)
				ok = false
				continue
			}
			s, sok := d.nonEmpty(f.val, join(ip, k))
			if !sok {
				ok = false
				continue
			}
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				d.addf(f.val, join(ip, k), "%q is not an RFC 3339 time such as 2026-12-20T00:00:00Z", clip(s))
				ok = false
				continue
			}
			if k == "from" {
				w.From = t
			} else {
				w.To = t
			}
		}
		if f, present := fs["reason"]; present {
			w.Reason, _ = d.str(f.val, join(ip, "reason"))
		}
		if ok && !w.To.After(w.From) {
			d.addf(item, ip, "freeze window ends (%s) before it starts (%s)", w.To.Format(time.RFC3339), w.From.Format(time.RFC3339))
			ok = false
		}
		if ok {
			out = append(out, w)
		}
	}
	return out
}

// checkPromotion checks that promote_from names another declared environment
// and that following promote_from never comes back to where it started.
func (d *decoder) checkPromotion(envs map[string]*gantry.EnvironmentSpec, refs map[string]*envRefs, path string) {
	names := sortedNames(envs)
	valid := map[string]bool{}
	for _, name := range names {
		from, at := envs[name].PromoteFrom, refs[name].promoteFrom
		p := join(join(path, name), "promote_from")
		switch {
		case from == "":
		case from == name:
			d.addf(at, p, "an environment cannot be promoted from itself")
		case envs[from] == nil:
			d.addf(at, p, "unknown environment %q%s", clip(from), didYouMean(from, names))
		default:
			valid[name] = true
		}
	}
	// Each environment has at most one source, so the graph is a set of
	// chains; a walk that meets an environment of its own walk found a cycle.
	done := map[string]bool{}
	for _, start := range names {
		walk := map[string]int{}
		var chain []string
		for cur := start; valid[cur] && !done[cur]; cur = envs[cur].PromoteFrom {
			if _, seen := walk[cur]; seen {
				cycle := chain[walk[cur]:]
				first := cycle[0]
				for _, c := range cycle {
					first = min(first, c)
				}
				d.addf(refs[first].promoteFrom, join(join(path, first), "promote_from"),
					"promotion cycle: %s", cycleText(cycle, first, envs))
				break
			}
			walk[cur] = len(chain)
			chain = append(chain, cur)
		}
		for _, c := range chain {
			done[c] = true
		}
	}
}

// cycleText renders a cycle from its smallest member, in promotion order:
// "a <- b <- a" reads "a is promoted from b, which is promoted from a".
func cycleText(cycle []string, first string, envs map[string]*gantry.EnvironmentSpec) string {
	parts := []string{first}
	for cur := envs[first].PromoteFrom; ; cur = envs[cur].PromoteFrom {
		parts = append(parts, cur)
		if cur == first || len(parts) > len(cycle) {
			break
		}
	}
	return strings.Join(parts, " <- ")
}

// checkHostsUnique reports a host claimed by two environments: the router
// could not tell which one a request is for.
func (d *decoder) checkHostsUnique(envs map[string]*gantry.EnvironmentSpec, refs map[string]*envRefs, order []string, path string) {
	owner := map[string]string{}
	for _, name := range order {
		for _, h := range envs[name].Hosts {
			if prev, taken := owner[h]; taken {
				at := refs[name].hosts[h]
				d.addf(at.node, at.path, "host %q is already used by environment %q", h, prev)
				continue
			}
			owner[h] = name
		}
	}
}

// varPlaceholders refuses a variable whose value holds a placeholder that
// Gantry does not fill ({hots} for {host}), which would reach the app as
// written.
func (d *decoder) varPlaceholders(n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return // stringMap said so
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if v.Kind != yaml.ScalarNode {
			continue
		}
		if bad := gantry.UnknownPlaceholders(v.Value); len(bad) > 0 {
			d.addf(v, join(path, k.Value), "unknown placeholder {%s}: a value may hold {%s}, filled for each environment", strings.Join(bad, "}, {"), strings.Join(gantry.VarPlaceholders, "}, {"))
		}
	}
}
