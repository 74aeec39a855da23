package build

import (
	"os"
	"strings"
	"testing"
)

// TestBuildEnvironmentDocumented: every variable a build command gets is
// in docs/environment.md's build section, so the page cannot drift from
// what passes.
func TestBuildEnvironmentDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/environment.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## A build")
	if !ok {
		t.Fatal("docs/environment.md has no section \"## A build\"")
	}
	env := buildEnv(func(string) string { return "x" }, "shop", "1.0.0", "abc")
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the build gets %s, which docs/environment.md does not list", name)
		}
	}
}
