package main

import (
	"strings"
	"testing"
)

// TestNamesCheckedByTheCLI: a bad app or environment name is a usage error
// said by the CLI, by the one rule of gantry.ValidName, before any server
// is asked.
func TestNamesCheckedByTheCLI(t *testing.T) {
	for _, args := range [][]string{
		{"app", "add", "Shop_App", "--repo", "."},
		{"env", "clone", "test", "Test_New"},
		{"env", "rename", "testnew", "test", "--displace-to", "test-"},
	} {
		_, errs, code := runCLI(t, "http://127.0.0.1:1", append([]string{"--app", "shop"}, args...)...)
		if code != 2 || !strings.Contains(errs, "name") || !strings.Contains(errs, "lowercase letters, digits and '-'") {
			t.Errorf("gantry %s: exit %d, %q; want 2 saying what a name may hold", strings.Join(args, " "), code, errs)
		}
	}
}
