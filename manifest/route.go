package manifest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// route reads services.<service>.route: host-name prefixes and/or a path
// prefix under the environment's hosts.
func (d *decoder) route(n *yaml.Node, path string, s *gantry.Service) *gantry.ServiceRoute {
	r := &gantry.ServiceRoute{}
	fs := d.mapping(n, path, "services.<service>.route")
	if f, ok := fs["hosts"]; ok {
		r.Hosts = d.stringList(f.val, join(path, "hosts"), func(item *yaml.Node, p, h string) bool {
			for _, label := range strings.Split(h, ".") {
				if len(label) > 63 || !hostLabel.MatchString(label) {
					d.addf(item, p, "invalid host prefix %q: dot-separated parts of 1-63 lowercase letters, digits or '-' (\"api\" serves api.<each environment host>)", clip(h))
					return false
				}
			}
			return true
		})
	}
	if f, ok := fs["path"]; ok {
		if p, ok := d.urlPath(f.val, join(path, "path")); ok {
			if strings.ContainsAny(p, "?*") {
				d.addf(resolve(f.val), join(path, "path"), "invalid path prefix %q: a plain path such as /api, without query or wildcard", clip(p))
			} else {
				r.Path = strings.TrimSuffix(p, "/")
				if r.Path == "" {
					r.Path = "/"
				}
			}
		}
	}
	if v := resolve(n); v.Kind == yaml.MappingNode && len(fs) == 0 {
		d.addf(v, path, "an empty route takes what a service without route takes: give hosts or path, or remove the key")
	}
	if !s.HTTP {
		d.addf(n, path, "route is for http services; %s has http: false and takes no requests", s.Name)
	}
	return r
}

// routeClaim is one (host prefix, path prefix) pair an http service takes,
// and where the service declared it.
type routeClaim struct {
	host, path string
}

// checkRoutes reports two http services that would receive the same
// requests: the same host prefix (or none) and the same path prefix.
func (d *decoder) checkRoutes(services map[string]*gantry.Service, at map[string]*yaml.Node, path string) {
	names := make([]string, 0, len(services))
	for n, s := range services {
		if s.HTTP && at[n] != nil {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return at[names[i]].Line < at[names[j]].Line })
	owner := map[routeClaim]string{}
	for _, n := range names {
		s := services[n]
		hosts := []string{""}
		if s.Route != nil && len(s.Route.Hosts) > 0 {
			hosts = s.Route.Hosts
		}
		for _, h := range hosts {
			c := routeClaim{host: h, path: s.RoutePath()}
			first, taken := owner[c]
			if !taken {
				owner[c] = n
				continue
			}
			p := join(path, n)
			if s.Route != nil {
				p = join(p, "route")
			}
			d.addf(at[n], p, "services %s (line %d) and %s would receive the same requests (%s): give one of them a route with another path or hosts",
				first, at[first].Line, n, describeClaim(c)+workerHint(services[first], s))
			break
		}
	}
}

// workerHint reminds that a process taking no requests says http: false,
// when neither service of a clash chose a route.
func workerHint(a, b *gantry.Service) string {
	if a.Route == nil && b.Route == nil {
		return "; a worker that takes no requests says http: false"
	}
	return ""
}

func describeClaim(c routeClaim) string {
	host := "the environment's hosts"
	if c.host != "" {
		host = c.host + ".<environment host>"
	}
	p := "every path"
	if c.path != "" {
		p = "paths under " + c.path
	}
	return fmt.Sprintf("%s, %s", host, p)
}

// keyNode returns the key node of key in mapping n, or nil.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}
