package kubernetes_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
)

// documentedRole is the Role that docs/kubernetes.md tells a team to
// apply: the first yaml block of the page that declares `kind: Role`.
func documentedRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	page, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(page), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains(block, "\nkind: Role\n") {
			continue
		}
		var r rbacv1.Role
		if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(block)), 4096).Decode(&r); err != nil {
			t.Fatalf("the Role in docs/kubernetes.md: %v", err)
		}
		return &r
	}
	t.Fatal("docs/kubernetes.md has no yaml block with kind: Role")
	return nil
}

// TestDocumentedRole runs a blue-green cycle (start, switch, a second
// slot, switch, rollback, stop) as a service account that holds only the
// Role docs/kubernetes.md prints, in a namespace that exists already,
// with the driver set up as `gantry server` sets it up: what the page
// promises a team with namespace-scoped rights must be enough.
func TestDocumentedRole(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-role")
	ctx := ctxFor(t)
	role := documentedRole(t)
	role.Namespace = ns
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the documented Role: %v", err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "gantry"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "gantry"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "gantry", Namespace: ns}},
	}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "gantry", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.BearerToken = tok.Status.Token
	client, err := kubernetes.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &kubernetes.Driver{Client: client, Namespace: ns, CreateNamespace: true, Logger: newDriver(t, c, ns).Logger}

	blue := gantry.SlotRef{App: "shop", Env: "role", Slot: gantry.SlotBlue}
	green := gantry.SlotRef{App: "shop", Env: "role", Slot: gantry.SlotGreen}
	MustStartSlot(t, d, slot("shop", "role", "blue", "rel-1", webSpec(imageV1, "rel-1")))
	MustSwitch(t, d, blue)
	MustStartSlot(t, d, slot("shop", "role", "green", "rel-2", webSpec(imageV2, "rel-2")))
	MustSwitch(t, d, green)
	MustSwitch(t, d, blue) // the rollback
	if got := selectorSlot(t, c, ns, "shop-web"); got != "blue" {
		t.Fatalf("after the rollback the live Service selects %q, want blue", got)
	}
	if err := d.StopSlot(ctx, green, false); err != nil {
		t.Fatalf("StopSlot(green) with the documented Role: %v", err)
	}
	if active, err := d.ActiveSlot(context.Background(), blue); err != nil || active != gantry.SlotBlue {
		t.Fatalf("ActiveSlot with the documented Role: %q, %v", active, err)
	}
}
