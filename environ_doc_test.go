package gantry

import (
	"os"
	"strings"
	"testing"
)

// TestInstanceEnvironmentDocumented: every variable Gantry sets for an
// instance is in docs/environment.md's instance section.
func TestInstanceEnvironmentDocumented(t *testing.T) {
	b, err := os.ReadFile("docs/environment.md")
	if err != nil {
		t.Fatal(err)
	}
	section, _, ok := strings.Cut(string(b), "## A build")
	if !ok {
		t.Fatal("docs/environment.md has no section \"## A build\"")
	}
	env, err := InstanceSpec{App: "shop", Env: "test", Slot: "blue", Service: "web", ReleaseID: "r1", Port: 8000}.Environ(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("an instance gets %s, which docs/environment.md does not list", name)
		}
	}
	if !strings.Contains(section, "`HOST=127.0.0.1`") && !strings.Contains(section, "`127.0.0.1`") {
		t.Error("docs/environment.md does not say what HOST is")
	}
}
