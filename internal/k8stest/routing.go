package k8stest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// Routing resources, by the name of their kind in a manifest's
// runtime.routing.
var Routing = map[string]schema.GroupVersionResource{
	"ingress":   {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	"route":     {Group: "route.openshift.io", Version: "v1", Resource: "routes"},
	"httproute": {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
}

// Claims is what one routing object says: the hosts it claims and the
// Service they go to.
type Claims struct {
	Hosts   []string
	Service string
}

// RoutingClaims reads the hosts and the backend of an Ingress, a Route or
// an HTTPRoute. A Route's wildcard ("wildcard.example.com" with the
// Subdomain policy) reads as "*.example.com".
func RoutingClaims(u *unstructured.Unstructured) Claims {
	var c Claims
	switch u.GetKind() {
	case "Ingress":
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		for _, r := range rules {
			m, _ := r.(map[string]any)
			h, _, _ := unstructured.NestedString(m, "host")
			c.Hosts = append(c.Hosts, h)
			paths, _, _ := unstructured.NestedSlice(m, "http", "paths")
			if len(paths) > 0 {
				p, _ := paths[0].(map[string]any)
				c.Service, _, _ = unstructured.NestedString(p, "backend", "service", "name")
			}
		}
	case "Route":
		h, _, _ := unstructured.NestedString(u.Object, "spec", "host")
		if p, _, _ := unstructured.NestedString(u.Object, "spec", "wildcardPolicy"); p == "Subdomain" {
			h = "*." + strings.TrimPrefix(h, "wildcard.")
		}
		c.Hosts = []string{h}
		c.Service, _, _ = unstructured.NestedString(u.Object, "spec", "to", "name")
	case "HTTPRoute":
		c.Hosts, _, _ = unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		if len(rules) > 0 {
			r, _ := rules[0].(map[string]any)
			refs, _, _ := unstructured.NestedSlice(r, "backendRefs")
			if len(refs) > 0 {
				b, _ := refs[0].(map[string]any)
				c.Service, _, _ = unstructured.NestedString(b, "name")
			}
		}
	}
	return c
}

// HostWatch records, from one watch of routing objects in every
// namespace, each moment a watched host had no object claiming it: the
// watch delivers the changes in the order the API server made them, so a
// host moved by "create the new, then delete the old" is never unclaimed.
type HostWatch struct {
	mu      sync.Mutex
	objects map[string][]string // namespace/name → hosts
	gaps    []string
	events  int
}

// WatchHosts starts watching the routing objects of kind (a key of
// Routing) that the label selector picks, for the given hosts; it stops
// when the test ends.
func (c *Cluster) WatchHosts(tb testing.TB, kind, selector string, hosts ...string) *HostWatch {
	tb.Helper()
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := dc.Resource(Routing[kind])
	list, err := res.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	hw := &HostWatch{objects: map[string][]string{}}
	for _, u := range list.Items {
		hw.objects[u.GetNamespace()+"/"+u.GetName()] = RoutingClaims(&u).Hosts
	}
	w, err := res.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			key := u.GetNamespace() + "/" + u.GetName()
			hw.mu.Lock()
			hw.events++
			if ev.Type == watch.Deleted {
				delete(hw.objects, key)
			} else {
				hw.objects[key] = RoutingClaims(u).Hosts
			}
			for _, h := range hosts {
				if !slices.ContainsFunc(slices.Collect(maps.Values(hw.objects)), func(hs []string) bool { return slices.Contains(hs, h) }) {
					hw.gaps = append(hw.gaps, fmt.Sprintf("%s unclaimed after %s %s", h, ev.Type, key))
				}
			}
			hw.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { cancel(); w.Stop(); <-done })
	return hw
}

// Wait waits until the watch has seen the object namespace/name gone
// (the last change of a move) and returns the gaps it recorded and the
// number of changes it saw.
func (hw *HostWatch) Wait(tb testing.TB, gone string, timeout time.Duration) (gaps []string, events int) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		hw.mu.Lock()
		_, stale := hw.objects[gone]
		gaps, events = slices.Clone(hw.gaps), hw.events
		hw.mu.Unlock()
		if !stale {
			return gaps, events
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the watch never saw %s go", gone)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
