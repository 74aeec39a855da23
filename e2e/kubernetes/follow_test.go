package kubernetes_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/k8stest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// readyPodIPs returns the IPs of slot's ready, not deleted pods, sorted.
func readyPodIPs(t *testing.T, c *k8stest.Cluster, ns, slot string) []string {
	t.Helper()
	list, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "gantry.dev/slot=" + slot})
	if err != nil {
		t.Fatalf("pods of slot %s: %v", slot, err)
	}
	var ips []string
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				ips = append(ips, p.Status.PodIP)
			}
		}
	}
	sort.Strings(ips)
	return ips
}

// answeredBy returns the pod IPs that answered 200 in counts (keyed as
// ipLoad keys them), sorted, and the number of other answers.
func answeredBy(counts map[string]int) (ips []string, failed int) {
	for k, n := range counts {
		if ip, ok := strings.CutPrefix(k, "200 "); ok {
			ips = append(ips, ip)
		} else {
			failed += n
		}
	}
	sort.Strings(ips)
	return ips, failed
}

// ipLoad counts the answers through the router by the IP of the pod that
// gave them ("200 10.244.0.7", "502 ?", "error").
func ipLoad(t *testing.T, g *gantryServer, host string) *load {
	return startLoadBy(t, g.router, host, func(code int, body string) string {
		ip := "?"
		if code != 200 {
			ip = strings.Join(strings.Fields(body), " ") // the router's answer, to say what failed
		}
		for _, f := range strings.Fields(body) {
			if v, ok := strings.CutPrefix(f, "ip="); ok {
				ip = v
			}
		}
		return fmt.Sprintf("%d %s", code, ip)
	})
}

func setUnschedulable(t *testing.T, c *k8stest.Cluster, node string, on bool) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := c.Client.CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("cordon %s (%t): %v", node, on, err)
	}
	if on {
		t.Cleanup(func() { setUnschedulable(t, c, node, false) })
	}
}

// squat places a pod that is not the app's on node, to take the IP ip
// freed by a deleted pod (kwok may hand out another: replacePod then
// tries again).
func squat(t *testing.T, c *k8stest.Cluster, ns, name, node, ip string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/squatter:1"}}},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the squatter: %v", err)
	}
	var got string
	for until := time.Now().Add(5 * time.Second); time.Now().Before(until) && got == ""; time.Sleep(20 * time.Millisecond) {
		if p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); err == nil {
			got = p.Status.PodIP
		}
	}
	if got != ip {
		t.Logf("the squatter got %q, not the freed %s", got, ip)
	}
}

// mustIPs is answeredBy's IPs when nothing failed, else nil.
func mustIPs(ips []string, failed int) []string {
	if failed != 0 {
		return nil
	}
	return ips
}

// getStatus sends one request through the router to host.
func getStatus(t *testing.T, g *gantryServer, host string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.router+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRouterFollowsReplacedPods puts Gantry's router in front of the pods
// (runtime.traffic: router) and has the cluster replace a pod of the live
// slot, as when a node is drained: the ReplicaSet creates another pod with
// another IP, and the server's follower points the router at it, under
// load. Then a rename moves the routes with the hosts, and the follower
// keeps following under the new name.
func TestRouterFollowsReplacedPods(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "follow")
	serveApp(t, c, ns, nil)
	g := newServer(t, c, serveManifest(ns, ", traffic: router", ""), serveReleases())
	g.cli(0, "deploy", "test", "--release", "1.0.0")
	before := readyPodIPs(t, c, ns, "blue")
	if len(before) != 2 {
		t.Fatalf("ready pods of blue after the deploy: %v, want 2", before)
	}

	l := ipLoad(t, g, "test.shop.localhost")
	time.Sleep(500 * time.Millisecond)
	if ips, failed := answeredBy(l.take()); !slices.Equal(ips, before) || failed != 0 {
		t.Fatalf("through the router before: answered by %v with %d failures, want %v and none", ips, failed, before)
	}

	after := replacePod(t, c, ns, l)
	// The environment records the new pods, for the next switch or rollback.
	status := g.cli(0, "status", "test", "--json")
	for _, ip := range after {
		if !strings.Contains(status, ip) {
			t.Errorf("status does not name the pod %s:\n%s", ip, status)
		}
	}

	// A rename moves the routes with the hosts (test.shop.localhost becomes
	// prod.shop.localhost), and the follower follows the environment under
	// its new name.
	g.cli(0, "env", "rename", "test", "prod")
	l.end()
	l = ipLoad(t, g, "prod.shop.localhost")
	time.Sleep(500 * time.Millisecond)
	if got := l.take(); !slices.Equal(mustIPs(answeredBy(got)), after) {
		t.Errorf("through the router to prod.shop.localhost after the rename: %v, want only %v", got, after)
	}
	if code := getStatus(t, g, "test.shop.localhost"); code != http.StatusNotFound {
		t.Errorf("the old host answers %d after the rename, want 404 (its route removed)", code)
	}
	again := replacePod(t, c, ns, l)
	status = g.cli(0, "status", "prod", "--json")
	for _, ip := range again {
		if !strings.Contains(status, ip) {
			t.Errorf("status of prod does not name the pod %s:\n%s", ip, status)
		}
	}
	l.end()
}

// replacePod has the cluster replace a pod of the live blue slot while l
// runs, until the new pod has another IP (kwok may hand the same one out
// again: then once more), and returns the new ready set once the router
// serves exactly it.
func replacePod(t *testing.T, c *k8stest.Cluster, ns string, l *load) []string {
	t.Helper()
	ctx := context.Background()
	for attempt := 1; attempt <= 3; attempt++ {
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "gantry.dev/slot=blue"})
		if err != nil {
			t.Fatal(err)
		}
		victim := list.Items[0]
		// kwok hands out the lowest free IP, which would be the victim's
		// again: the node is cordoned while the victim goes, a pod placed
		// on it by name (past the cordon) takes the freed IP, and the
		// ReplicaSet's new pod is scheduled after, as on another node.
		setUnschedulable(t, c, victim.Spec.NodeName, true)
		deleted := time.Now()
		if err := c.Client.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for podExists(c, ns, victim.Name) { // its IP is free once it is gone
			time.Sleep(10 * time.Millisecond)
		}
		squat(t, c, ns, "squatter-"+victim.Name, victim.Spec.NodeName, victim.Status.PodIP)
		setUnschedulable(t, c, victim.Spec.NodeName, false)
		var after []string
		var ready time.Time // when the new pod was first seen ready
		total := map[string]int{}
		for deadline := time.Now().Add(60 * time.Second); ; {
			if time.Now().After(deadline) {
				t.Fatalf("the router did not follow the replaced pod %s (%s) within 60s: pods now %v, answers since the delete %v",
					victim.Name, victim.Status.PodIP, after, total)
			}
			time.Sleep(100 * time.Millisecond)
			got := l.take()
			for k, n := range got {
				total[k] += n
			}
			after = readyPodIPs(t, c, ns, "blue")
			if len(after) != 2 {
				continue
			}
			if ready.IsZero() {
				ready = time.Now()
			}
			if slices.Contains(after, victim.Status.PodIP) && !podExists(c, ns, victim.Name) {
				break // the new pod has the old IP
			}
			if ips, _ := answeredBy(got); slices.Equal(ips, after) {
				_, failed := answeredBy(total)
				t.Logf("pod %s (%s) deleted; the new pod ready after %s; the router served the new set %v %s later; answers meanwhile %v (%d failed)",
					victim.Name, victim.Status.PodIP, ready.Sub(deleted).Round(time.Millisecond), after, time.Since(ready).Round(time.Millisecond), total, failed)
				// The gone pod's requests fail until the router leaves it
				// (k8stest's servers stop at once, the worst case): a
				// short window, at most a third of a second of this load.
				if failed > 50 {
					t.Errorf("%d requests failed between the delete and the follow, want at most 50", failed)
				}
				time.Sleep(500 * time.Millisecond)
				if ips, failed := answeredBy(l.take()); !slices.Equal(ips, after) || failed != 0 {
					t.Errorf("through the router after the follow: answered by %v with %d failures, want %v and none", ips, failed, after)
				}
				return after
			}
		}
		t.Logf("attempt %d: the new pod got the replaced pod's IP %s again; once more", attempt, victim.Status.PodIP)
	}
	t.Fatal("kwok gave the replaced pod's IP to the new pod three times")
	return nil
}

func podExists(c *k8stest.Cluster, ns, name string) bool {
	_, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}
