package gantry

import "strings"

// ServiceRoute is the part of an environment's traffic one http service
// takes: requests to some host names and/or under a path prefix. The router
// matches the longest path prefix, so a service routed at /api takes
// /api/… while a service without a route takes everything else.
type ServiceRoute struct {
	// Hosts are host-name prefixes: "api" serves api.<host> for each
	// (non-wildcard) host of the environment. Empty: the environment's hosts.
	Hosts []string `json:"hosts,omitempty"`
	// Path is a path prefix matched on whole segments ("/api" takes /api and
	// /api/x, not /apix); the service receives the path unchanged.
	Path string `json:"path,omitempty"`
}

// ServiceRouteName is the router's name for the route of service s in an
// environment: the environment's own route name (RouteName) for a service
// without a route, "<app>/<env>/<service>" for one with a route.
func ServiceRouteName(app, env string, s *Service) string {
	if s.Route == nil {
		return RouteName(app, env)
	}
	return RouteName(app, env) + "/" + s.Name
}

// IsEnvironmentRoute reports whether the router's route name belongs to
// the environment env of app (its own route or one of its services').
func IsEnvironmentRoute(name, app, env string) bool {
	base := RouteName(app, env)
	return name == base || strings.HasPrefix(name, base+"/")
}

// RouteHosts returns the hosts under which s is served in an environment
// whose hosts are envHosts: those hosts, or for a route with Hosts each
// prefix joined to each non-wildcard environment host.
func (s *Service) RouteHosts(envHosts []string) []string {
	if s.Route == nil || len(s.Route.Hosts) == 0 {
		return envHosts
	}
	var out []string
	for _, p := range s.Route.Hosts {
		for _, h := range envHosts {
			if strings.HasPrefix(h, "*.") {
				continue
			}
			out = append(out, p+"."+h)
		}
	}
	return out
}

// RoutePath is the path prefix of s's route ("" for every path).
func (s *Service) RoutePath() string {
	if s.Route == nil || s.Route.Path == "/" {
		return ""
	}
	return s.Route.Path
}
