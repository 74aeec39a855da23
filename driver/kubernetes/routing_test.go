package kubernetes_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

var routingGVR = map[string]schema.GroupVersionResource{
	gantry.RoutingIngress:   {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	gantry.RoutingRoute:     {Group: "route.openshift.io", Version: "v1", Resource: "routes"},
	gantry.RoutingHTTPRoute: {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
}

func dynamicClient(t *testing.T, c *k8stest.Cluster) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// claims is what one routing object says: the hosts it claims and the
// Service they go to.
type claims struct {
	hosts   []string
	service string
}

// routingClaims reads the hosts and backend of any of the three kinds.
func routingClaims(u *unstructured.Unstructured) claims {
	var c claims
	switch u.GetKind() {
	case "Ingress":
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		for _, r := range rules {
			m := r.(map[string]any)
			c.hosts = append(c.hosts, m["host"].(string))
			paths, _, _ := unstructured.NestedSlice(m, "http", "paths")
			c.service, _, _ = unstructured.NestedString(paths[0].(map[string]any), "backend", "service", "name")
		}
	case "Route":
		h, _, _ := unstructured.NestedString(u.Object, "spec", "host")
		if p, _, _ := unstructured.NestedString(u.Object, "spec", "wildcardPolicy"); p == "Subdomain" {
			h = "*." + strings.TrimPrefix(h, "wildcard.")
		}
		c.hosts = []string{h}
		c.service, _, _ = unstructured.NestedString(u.Object, "spec", "to", "name")
	case "HTTPRoute":
		c.hosts, _, _ = unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		refs, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
		c.service = refs[0].(map[string]any)["name"].(string)
	}
	return c
}

// routingOf maps each host the app's routing objects of kind in ns claim
// to the Service it goes to, with the role label of the object.
func routingOf(t *testing.T, c *k8stest.Cluster, kind, ns string) map[string]string {
	t.Helper()
	list, err := dynamicClient(t, c).Resource(routingGVR[kind]).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubernetes.LabelManagedBy + "=gantry"})
	if err != nil {
		t.Fatalf("list %s: %v", kind, err)
	}
	out := map[string]string{}
	for _, u := range list.Items {
		cl := routingClaims(&u)
		for _, h := range cl.hosts {
			out[h] = u.GetLabels()[kubernetes.LabelRole] + "→" + cl.service
		}
	}
	return out
}

// TestRoutingObjects: for each kind, a switch makes the environment's
// hosts and preview hosts objects the real API server accepts (the CRDs of
// OpenShift and Gateway API validate them), pointing at the live and
// preview Services; hosts dropped later are removed; routing: none
// removes them all.
func TestRoutingObjects(t *testing.T) {
	c := k8stest.Need(t, cluster)
	for _, kind := range []string{gantry.RoutingIngress, gantry.RoutingRoute, gantry.RoutingHTTPRoute} {
		t.Run(kind, func(t *testing.T) {
			ns := c.Namespace(t, "routing-"+kind)
			d := newDriver(t, c, ns)
			rt := gantry.RuntimeSpec{Driver: "kubernetes", Routing: kind}
			if kind == gantry.RoutingHTTPRoute {
				rt.Gateway = "infra/public"
			}
			ref := gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue, Runtime: rt,
				Hosts: []string{"test.shop.example", "*.test.shop.example"}, PreviewHosts: []string{"preview.test.shop.example"}}
			s := slot("shop", "test", "blue", "rel-1", webSpec(imageV1, "rel-1"), workerSpec(imageV1, "rel-1"))
			s.SlotRef = ref
			MustStartSlot(t, d, s)
			if got, want := routingOf(t, c, kind, ns), map[string]string{"preview.test.shop.example": "preview→shop-web-preview"}; !maps.Equal(got, want) {
				t.Fatalf("after StartSlot: routing %v, want %v (the candidate's preview host only)", got, want)
			}
			MustSwitch(t, d, ref)
			want := map[string]string{
				"test.shop.example":         "live→shop-web",
				"*.test.shop.example":       "live→shop-web",
				"preview.test.shop.example": "preview→shop-web-preview",
			}
			if got := routingOf(t, c, kind, ns); !maps.Equal(got, want) {
				t.Fatalf("after Switch: routing %v, want %v", got, want)
			}

			ref.Hosts = ref.Hosts[:1]
			MustSwitch(t, d, ref)
			delete(want, "*.test.shop.example")
			if got := routingOf(t, c, kind, ns); !maps.Equal(got, want) {
				t.Fatalf("after a host was dropped: routing %v, want %v", got, want)
			}

			ref.Runtime.Routing, ref.Runtime.Gateway = gantry.RoutingNone, ""
			MustSwitch(t, d, ref)
			if got := routingOf(t, c, kind, ns); len(got) != 0 {
				t.Fatalf("with routing: none: routing %v, want none of Gantry's", got)
			}
		})
	}
}

// TestRoutingValidatedByAPIServer: what the API server refuses comes back
// as an invalid-input error naming the object, and the active slot keeps
// its routing. 17 hostnames exceed an HTTPRoute's limit of 16; the
// definition installed in the test cluster says so, as Gateway API's does.
func TestRoutingValidatedByAPIServer(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "routing-bad")
	d := newDriver(t, c, ns)
	ref := gantry.SlotRef{App: "shop", Env: "test", Slot: gantry.SlotBlue,
		Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Routing: gantry.RoutingHTTPRoute, Gateway: "public"},
		Hosts:   []string{"test.shop.example"}}
	s := slot("shop", "test", "blue", "rel-1", webSpec(imageV1, "rel-1"))
	s.SlotRef = ref
	MustStartSlot(t, d, s)
	MustSwitch(t, d, ref)
	for i := range 17 {
		ref.Hosts = append(ref.Hosts, fmt.Sprintf("h%d.shop.example", i))
	}
	err := d.Switch(ctxFor(t), ref)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(err.Error(), "HTTPRoute "+ns+"/shop-test") || !strings.Contains(err.Error(), "spec.hostnames") {
		t.Fatalf("Switch with 18 hostnames: %v, want EINVALID naming the HTTPRoute and spec.hostnames", err)
	}
	if got := routingOf(t, c, gantry.RoutingHTTPRoute, ns); got["test.shop.example"] != "live→shop-web" || len(got) != 1 {
		t.Fatalf("after the refused switch: routing %v, want test.shop.example still live", got)
	}
}

// hostWatch records, from one watch of the app's routing objects in every
// namespace, whether a host was ever without an object claiming it: the
// watch delivers changes in the order the API server made them.
type hostWatch struct {
	mu      sync.Mutex
	objects map[string][]string // namespace/name → hosts
	gaps    []string
	events  int
}

func watchHosts(t *testing.T, c *k8stest.Cluster, kind, app string, hosts ...string) *hostWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := dynamicClient(t, c).Resource(routingGVR[kind])
	sel := kubernetes.LabelApp + "=" + app
	list, err := res.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	hw := &hostWatch{objects: map[string][]string{}}
	for _, u := range list.Items {
		hw.objects[u.GetNamespace()+"/"+u.GetName()] = routingClaims(&u).hosts
	}
	w, err := res.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			hw.mu.Lock()
			hw.events++
			key := u.GetNamespace() + "/" + u.GetName()
			if ev.Type == watch.Deleted {
				delete(hw.objects, key)
			} else {
				hw.objects[key] = routingClaims(u).hosts
			}
			for _, h := range hosts {
				if !slices.ContainsFunc(slices.Collect(maps.Values(hw.objects)), func(hs []string) bool { return slices.Contains(hs, h) }) {
					hw.gaps = append(hw.gaps, fmt.Sprintf("%s unclaimed after %s %s", h, ev.Type, key))
				}
			}
			hw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return hw
}

// TestRenameMovesHosts is a rename of testnew to test, test going to
// testold, as the engine runs it on this runtime: switch test under its
// new name testold (its hosts become testold's; its old objects stay),
// switch testnew under the name test (it claims test's hosts), release
// testnew's objects, then the displaced environment's objects of the name
// test. Every environment has its own namespace, which a rename keeps. At
// no change seen by a watch is test's host without an object claiming it.
func TestRenameMovesHosts(t *testing.T) {
	c := k8stest.Need(t, cluster)
	for _, kind := range []string{gantry.RoutingIngress, gantry.RoutingRoute} {
		t.Run(kind, func(t *testing.T) {
			nsTest, nsNew := c.Namespace(t, "rn-test"), c.Namespace(t, "rn-testnew")
			d := newDriver(t, c, "")
			env := func(name, ns string, hosts ...string) gantry.SlotRef {
				return gantry.SlotRef{App: "shop", Env: name, Slot: gantry.SlotBlue, Hosts: hosts, PreviewHosts: []string{"preview." + hosts[0]},
					Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Namespace: ns, Routing: kind}}
			}
			for _, ref := range []gantry.SlotRef{env("test", nsTest, "test.shop.example"), env("testnew", nsNew, "testnew.shop.example")} {
				s := slot("shop", ref.Env, "blue", "rel-"+ref.Env, webSpec(imageV1, "rel-"+ref.Env))
				s.SlotRef = ref
				MustStartSlot(t, d, s)
				MustSwitch(t, d, ref)
			}
			hw := watchHosts(t, c, kind, "shop", "test.shop.example", "preview.test.shop.example")

			MustSwitch(t, d, env("testold", nsTest, "testold.shop.example"))
			MustSwitch(t, d, env("test", nsNew, "test.shop.example"))
			if err := d.ReleaseHosts(ctxFor(t), env("testnew", nsNew, "testnew.shop.example")); err != nil {
				t.Fatal(err)
			}
			if err := d.ReleaseHosts(ctxFor(t), env("test", nsTest, "test.shop.example")); err != nil {
				t.Fatal(err)
			}

			want := map[string]string{"test.shop.example": "live→shop-web", "preview.test.shop.example": "preview→shop-web-preview"}
			if got := routingOf(t, c, kind, nsNew); !maps.Equal(got, want) {
				t.Errorf("%s (was testnew's, now test's): routing %v, want %v", nsNew, got, want)
			}
			want = map[string]string{"testold.shop.example": "live→shop-web", "preview.testold.shop.example": "preview→shop-web-preview"}
			if got := routingOf(t, c, kind, nsTest); !maps.Equal(got, want) {
				t.Errorf("%s (was test's, now testold's): routing %v, want %v", nsTest, got, want)
			}
			// The watch is asynchronous: wait until it has seen the last
			// deletion before reading its record.
			deadline := time.Now().Add(waitTimeout)
			for {
				hw.mu.Lock()
				_, stale := hw.objects[nsTest+"/shop-test"]
				events, gaps := hw.events, slices.Clone(hw.gaps)
				hw.mu.Unlock()
				if !stale {
					if len(gaps) > 0 {
						t.Errorf("hosts without an environment during the rename: %v", gaps)
					}
					if events < 6 {
						t.Errorf("the watch saw %d changes, want at least 6 (2 created, 2 deleted, each with its preview)", events)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the watch never saw the displaced environment's objects go")
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The workloads answer under the new names: the live Service of
			// the renamed environment still selects its pods.
			if got := selectorSlot(t, c, nsNew, "shop-web"); got != gantry.SlotBlue {
				t.Errorf("shop-web in %s selects slot %q after the rename, want blue", nsNew, got)
			}
			if a, err := d.ActiveSlot(ctxFor(t), env("test", nsNew, "test.shop.example")); err != nil || a != gantry.SlotBlue {
				t.Errorf("ActiveSlot of the renamed environment = %q, %v; want blue", a, err)
			}
		})
	}
}
