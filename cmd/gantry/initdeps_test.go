package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// heavyInit are packages whose initialisation every gantry command would
// pay, CLI verbs included, for what only one driver needs: each one was
// measured with GODEBUG=inittrace=1 (see BenchmarkCLIStart).
var heavyInit = map[string]string{
	"k8s.io/client-go/kubernetes/scheme": "registers every built-in API group at init (1.3–9 ms); the kubernetes driver has its own scheme, built on first use",
	"k8s.io/client-go/kubernetes":        "the generated clientset imports kubernetes/scheme; use the kubernetes driver's Client",
}

// kubeGroups are the built-in Kubernetes API groups the binary may link;
// each k8s.io/api package adds its types' init and the binary's size.
var kubeGroups = []string{"k8s.io/api/core/v1", "k8s.io/api/apps/v1"}

// TestNoHeavyInit keeps the binary's start small: `go list -deps` of
// cmd/gantry must not name a package of heavyInit, nor a Kubernetes API
// group beyond kubeGroups.
func TestNoHeavyInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/gantry-dev/gantry/driver/kubernetes") {
		t.Fatal("go list -deps does not list the kubernetes driver: the check would prove nothing")
	}
	for _, p := range deps {
		if why, ok := heavyInit[p]; ok {
			t.Errorf("the gantry binary imports %s: %s", p, why)
		}
		if strings.HasPrefix(p, "k8s.io/api/") && !slices.Contains(kubeGroups, p) {
			t.Errorf("the gantry binary imports %s: only %v are wanted (each group's types initialise in every command)", p, kubeGroups)
		}
	}
}
