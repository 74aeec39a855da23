package proxy

import (
	"sort"
	"strings"
	"unsafe"

	"github.com/gantry-dev/gantry"
)

// maxHostLen bounds a DNS name; normalising into a fixed stack buffer of this
// size is what keeps lookups allocation-free.
const maxHostLen = 253

// tableEntry binds one (host, path prefix) pair to a route. preview says the
// host is one of the route's PreviewHosts.
type tableEntry struct {
	prefix  string
	rt      *route
	preview bool
}

// routeTable is immutable once built; the router swaps whole tables so the
// hot path reads it without locks.
type routeTable struct {
	exact map[string][]tableEntry
	// wild is keyed by the suffix of "*.example.com", i.e. "example.com".
	wild map[string][]tableEntry
}

func emptyTable() *routeTable {
	return &routeTable{exact: map[string][]tableEntry{}, wild: map[string][]tableEntry{}}
}

// routeConfig pairs a route with the configuration to index it under, which
// differs from its current one while a deploy checks for conflicts.
type routeConfig struct {
	rt  *route
	cfg *gantry.Route
}

// buildTable indexes routes; a (host, prefix) pair claimed twice is a conflict.
func buildTable(routes []routeConfig) (*routeTable, error) {
	t := emptyTable()
	for _, rc := range routes {
		rt, cfg := rc.rt, rc.cfg
		if err := t.add(rt, cfg.Hosts, cfg.PathPrefix, false); err != nil {
			return nil, err
		}
		if err := t.add(rt, cfg.PreviewHosts, cfg.PathPrefix, true); err != nil {
			return nil, err
		}
	}
	// Longest prefix first, so the first match wins.
	for _, m := range []map[string][]tableEntry{t.exact, t.wild} {
		for _, es := range m {
			sort.SliceStable(es, func(i, j int) bool { return len(es[i].prefix) > len(es[j].prefix) })
		}
	}
	return t, nil
}

func (t *routeTable) add(rt *route, hosts []string, prefix string, preview bool) error {
	for _, h := range hosts {
		m, key := t.exact, h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			m, key = t.wild, rest
		}
		for _, e := range m[key] {
			if e.prefix == prefix {
				return gantry.Errorf(gantry.ECONFLICT, "host %q with path prefix %q is already served by route %q", h, prefix, e.rt.name)
			}
		}
		m[key] = append(m[key], tableEntry{prefix: prefix, rt: rt, preview: preview})
	}
	return nil
}

// lookupStatus says why a lookup found nothing, so the caller can tell a bad
// Host header (400) from an unknown one (404).
type lookupStatus int

const (
	lookupFound lookupStatus = iota
	lookupBadHost
	lookupNoRoute
)

// lookup finds the route for host and path without allocating. A host that
// is already canonical (the common case) is used as it is; any other is
// normalised into a stack buffer, viewed as a string only for map lookups.
func (t *routeTable) lookup(host, path string) (tableEntry, lookupStatus) {
	if canonicalHost(host) {
		return t.lookupCanonical(host, path)
	}
	var buf [maxHostLen + 2]byte
	b, ok := appendNormalizedHost(buf[:0], host)
	if !ok {
		return tableEntry{}, lookupBadHost
	}
	// The string aliases buf; it is used for map lookups only and not kept.
	return t.lookupCanonical(unsafe.String(&b[0], len(b)), path)
}

func (t *routeTable) lookupCanonical(h, path string) (tableEntry, lookupStatus) {
	if es, ok := t.exact[h]; ok {
		if e, ok := matchPrefix(es, path); ok {
			return e, lookupFound
		}
	}
	if i := strings.IndexByte(h, '.'); i >= 0 {
		if es, ok := t.wild[h[i+1:]]; ok {
			if e, ok := matchPrefix(es, path); ok {
				return e, lookupFound
			}
		}
	}
	return tableEntry{}, lookupNoRoute
}

// canonicalHost reports whether h is already what appendNormalizedHost would
// make of it: lower-case labels of [a-z0-9_-], no port, no trailing dot.
func canonicalHost(h string) bool {
	if h == "" || len(h) > maxHostLen {
		return false
	}
	prev := byte('.')
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			prev = c
			continue
		}
		if c != '.' || prev == '.' {
			return false
		}
		prev = c
	}
	return prev != '.'
}

func matchPrefix(es []tableEntry, path string) (tableEntry, bool) {
	for _, e := range es {
		if pathHasPrefix(path, e.prefix) {
			return e, true
		}
	}
	return tableEntry{}, false
}

// pathHasPrefix matches whole path segments: "/api" serves "/api" and
// "/api/x" but not "/apix", which would surprise whoever owns "/apix".
func pathHasPrefix(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}
