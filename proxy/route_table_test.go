package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com", true},
		{"Example.COM", "example.com", true},
		{"example.com:8080", "example.com", true},
		{"example.com.", "example.com", true},
		{"EXAMPLE.com.:443", "example.com", true},
		{"localhost", "localhost", true},
		{"127.0.0.1:80", "127.0.0.1", true},
		{"[::1]:8080", "[::1]", true},
		{"[FE80::1]", "[fe80::1]", true},
		{"my_host.local", "my_host.local", true},
		{"", "", false},
		{":80", "", false},
		{".", "", false},
		{"a..b", "", false},
		{".example.com", "", false},
		{"example.com:http", "", false},
		{"example.com:123456", "", false},
		{"exa mple.com", "", false},
		{"<script>", "", false},
		{"ex!ample.com", "", false},
		{"[::1", "", false},
		{"[]", "", false},
		{"[zz::1]", "", false},
		{"*.example.com", "", false},
		{strings.Repeat("a", 254), "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeHost(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// mustTable builds a table from route configs for lookup tests.
func mustTable(tb testing.TB, rcs ...gantry.Route) *routeTable {
	tb.Helper()
	r := New(Config{})
	var cfgs []routeConfig
	for _, rc := range rcs {
		cfg, err := withRouteDefaults(rc)
		if err != nil {
			tb.Fatal(err)
		}
		rt := r.newRoute(cfg.Name)
		rt.cfg.Store(cfg)
		cfgs = append(cfgs, routeConfig{rt, cfg})
	}
	tbl, err := buildTable(cfgs)
	if err != nil {
		tb.Fatal(err)
	}
	return tbl
}

func TestLookup(t *testing.T) {
	tbl := mustTable(t,
		gantry.Route{Name: "shop/prod", Hosts: []string{"shop.example.com", "WWW.Shop.Example.com."}, PreviewHosts: []string{"next.shop.example.com"}},
		gantry.Route{Name: "shop/api", Hosts: []string{"shop.example.com"}, PathPrefix: "/api"},
		gantry.Route{Name: "shop/apiv2", Hosts: []string{"shop.example.com"}, PathPrefix: "/api/v2"},
		gantry.Route{Name: "tenants", Hosts: []string{"*.tenants.example.com"}},
		gantry.Route{Name: "tenants/admin", Hosts: []string{"admin.tenants.example.com"}, PathPrefix: "/admin"},
		gantry.Route{Name: "local", Hosts: []string{"localhost", "127.0.0.1"}},
	)
	tests := []struct {
		host, path string
		want       string // route name, "" for none
		preview    bool
		status     lookupStatus
	}{
		{"shop.example.com", "/", "shop/prod", false, lookupFound},
		{"SHOP.example.com:8080", "/cart", "shop/prod", false, lookupFound},
		{"www.shop.example.com", "/", "shop/prod", false, lookupFound},
		{"next.shop.example.com", "/", "shop/prod", true, lookupFound},
		{"shop.example.com", "/api", "shop/api", false, lookupFound},
		{"shop.example.com", "/api/orders", "shop/api", false, lookupFound},
		{"shop.example.com", "/apix", "shop/prod", false, lookupFound},
		{"shop.example.com", "/api/v2/x", "shop/apiv2", false, lookupFound},
		{"a.tenants.example.com", "/", "tenants", false, lookupFound},
		{"admin.tenants.example.com", "/admin/x", "tenants/admin", false, lookupFound},
		// An exact host without a matching prefix falls back to the wildcard.
		{"admin.tenants.example.com", "/", "tenants", false, lookupFound},
		{"tenants.example.com", "/", "", false, lookupNoRoute},
		{"a.b.tenants.example.com", "/", "", false, lookupNoRoute},
		{"localhost:8080", "/", "local", false, lookupFound},
		{"127.0.0.1", "/", "local", false, lookupFound},
		{"other.example.com", "/", "", false, lookupNoRoute},
		{"bad host", "/", "", false, lookupBadHost},
		{"", "/", "", false, lookupBadHost},
	}
	for _, tt := range tests {
		e, st := tbl.lookup(tt.host, tt.path)
		got := ""
		if e.rt != nil {
			got = e.rt.name
		}
		if got != tt.want || st != tt.status || e.preview != tt.preview {
			t.Errorf("lookup(%q, %q) = %q preview=%v status=%v; want %q preview=%v status=%v", tt.host, tt.path, got, e.preview, st, tt.want, tt.preview, tt.status)
		}
	}
}

func TestRouteHostConflict(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	b := MustBackend(t, "a")
	MustDeploy(t, r, fastRoute("one", "x.example.com"), b.addr())
	_, err := r.Deploy(context.Background(), fastRoute("two", "X.example.com"), []string{b.addr()})
	if got := gantry.ErrorCode(err); got != gantry.ECONFLICT {
		t.Fatalf("deploy of a second route on the same host: code %q (%v), want %q", got, err, gantry.ECONFLICT)
	}
	if !strings.Contains(gantry.ErrorMessage(err), `"one"`) {
		t.Errorf("conflict error %q does not name the route holding the host", gantry.ErrorMessage(err))
	}
	if _, ok := r.Lookup("x.example.com", "/"); !ok {
		t.Errorf("route one lost its host after a refused conflicting deploy")
	}
	if st, _ := r.Status(context.Background()); len(st) != 1 {
		t.Errorf("status lists %d routes, want 1", len(st))
	}
}

func TestLookupAllocs(t *testing.T) {
	r := mustBenchRouter(t, 1000)
	hosts := []string{"app-500.example.com", "APP-7.example.com:8080", "x.wild-3.example.com", "nothing.example.org"}
	for _, h := range hosts {
		// AllocsPerRun counts the whole process; goroutines left by earlier
		// tests may allocate meanwhile, so the best of three runs is judged.
		allocs := 1.0
		for i := 0; i < 3 && allocs != 0; i++ {
			allocs = testing.AllocsPerRun(1000, func() { r.Lookup(h, "/some/path") })
		}
		if allocs != 0 {
			t.Errorf("Lookup(%q) allocates %v times per call, want 0", h, allocs)
		}
	}
}

// mustBenchRouter restores n routes (no targets, so no health checkers):
// half exact hosts, a quarter wildcards, a quarter path-prefixed.
func mustBenchRouter(tb testing.TB, n int) *Router {
	tb.Helper()
	r := New(Config{})
	tb.Cleanup(func() { r.Close() })
	var s State
	for i := 0; i < n; i++ {
		rc := gantry.Route{Name: fmt.Sprintf("r%d", i)}
		switch i % 4 {
		case 0, 1:
			rc.Hosts = []string{fmt.Sprintf("app-%d.example.com", i)}
		case 2:
			rc.Hosts = []string{fmt.Sprintf("*.wild-%d.example.com", i/4)}
		case 3:
			rc.Hosts = []string{fmt.Sprintf("app-%d.example.com", i-1)}
			rc.PathPrefix = "/some"
		}
		s.Routes = append(s.Routes, RouteState{Route: rc})
	}
	if err := r.Restore(context.Background(), s); err != nil {
		tb.Fatal(err)
	}
	return r
}

func BenchmarkLookup10kRoutes(b *testing.B) {
	r := mustBenchRouter(b, 10000)
	hosts := []string{"app-5000.example.com", "App-7001.Example.com:8080", "x.wild-1234.example.com", "app-9998.example.com"}
	for _, h := range hosts {
		if _, ok := r.Lookup(h, "/some/path"); !ok {
			b.Fatalf("Lookup(%q) found nothing", h)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Lookup(hosts[i&3], "/some/path")
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.com", "EXAMPLE.com.:80", "[::1]:8080", "a..b", "", "x:y", "[", "*.a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := normalizeHost(in)
		if !ok {
			return
		}
		if got == "" || len(got) > maxHostLen+2 {
			t.Fatalf("normalizeHost(%q) = %q: empty or too long", in, got)
		}
		if got != strings.ToLower(got) || strings.HasSuffix(got, ".") {
			t.Fatalf("normalizeHost(%q) = %q: not lower-case or ends with a dot", in, got)
		}
		if strings.ContainsAny(got, " <>\"'\\/\r\n") {
			t.Fatalf("normalizeHost(%q) = %q: unsafe characters", in, got)
		}
		again, ok := normalizeHost(got)
		if !ok || again != got {
			t.Fatalf("normalizeHost not idempotent: %q -> %q -> %q (%v)", in, got, again, ok)
		}
	})
}

func FuzzLookup(f *testing.F) {
	f.Add("shop.example.com", "/api/x")
	f.Add("a.tenants.example.com:80", "/")
	f.Add("SHOP.EXAMPLE.COM.", "/apix")
	f.Add("[::1]", "")
	f.Add("x", "/")
	tbl := mustTable(f,
		gantry.Route{Name: "prod", Hosts: []string{"shop.example.com"}},
		gantry.Route{Name: "api", Hosts: []string{"shop.example.com"}, PathPrefix: "/api"},
		gantry.Route{Name: "tenants", Hosts: []string{"*.tenants.example.com"}},
	)
	f.Fuzz(func(t *testing.T, host, path string) {
		e, st := tbl.lookup(host, path)
		h, ok := normalizeHost(host)
		if !ok {
			if st != lookupBadHost {
				t.Fatalf("lookup(%q) = %v for a host normalizeHost rejects", host, st)
			}
			return
		}
		if st != lookupFound {
			return
		}
		cfg := e.rt.cfg.Load()
		matched := false
		for _, rh := range cfg.Hosts {
			if rh == h || strings.HasPrefix(rh, "*.") && strings.HasSuffix(h, rh[1:]) && !strings.Contains(strings.TrimSuffix(h, rh[1:]), ".") {
				matched = true
			}
		}
		if !matched || !pathHasPrefix(path, cfg.PathPrefix) {
			t.Fatalf("lookup(%q, %q) = route %q whose hosts %v / prefix %q do not match", host, path, e.rt.name, cfg.Hosts, cfg.PathPrefix)
		}
	})
}

func TestCanonicalHostAgreesWithNormalize(t *testing.T) {
	for _, h := range []string{"a.b", "A.b", "a.b.", "a..b", ".a", "a:80", "a_b-c.d9", "", "[::1]", "a b"} {
		n, ok := normalizeHost(h)
		if canonicalHost(h) && (!ok || n != h) {
			t.Errorf("canonicalHost(%q) = true, but normalizeHost gives %q, %v", h, n, ok)
		}
		if ok && n == h && !strings.HasPrefix(h, "[") && !canonicalHost(h) {
			t.Errorf("canonicalHost(%q) = false for a normalised host", h)
		}
	}
}
