package gantry_test

import (
	"testing"

	"github.com/gantry-dev/gantry"
)

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2.3", "1.2.3", 0},
		{"1.2.3", "1.10.0", -1},
		{"2.0.0", "1.99.99", 1},
		{"1.1", "1.1.0", 0},
		{"1.2.3-rc.1", "1.2.3", -1},
		{"1.2.3-rc.2", "1.2.3-rc.10", -1},
		{"1.2.3+abc", "1.2.3", 0},
		{"16.03.1", "16.03.1b", -1},
		{"16.03.1b", "16.03.1a", 1},
		{"16.03.1z", "16.03.1aa", -1},
		{"16.04.1", "16.03.9", 1},
		{"016.03.1", "16.3.1", 0},
	} {
		if got := gantry.CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := gantry.CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestConstraint(t *testing.T) {
	for _, tc := range []struct {
		c, v string
		want bool
	}{
		{">=1.1.0", "1.1.0", true},
		{">=1.1.0", "1.0.9", false},
		{">=1.1.0, <2", "1.9.0", true},
		{">=1.1.0, <2", "2.0.0", false},
		{"1.2.0", "1.2.0", true},
		{"==v1.2.0", "1.2.1", false},
		{"!=1.2.0", "1.2.1", true},
		{">16.03.1", "16.03.1b", true},
		{"<=1.0.0", "1.0.0-rc.1", true},
	} {
		c, err := gantry.ParseConstraint(tc.c)
		if err != nil {
			t.Fatalf("ParseConstraint(%q): %v", tc.c, err)
		}
		if got := c.Allows(tc.v); got != tc.want {
			t.Errorf("%q allows %q = %v, want %v", tc.c, tc.v, got, tc.want)
		}
	}
	for _, bad := range []string{"", ">=", ">=1.0,", "~1.2", "latest", ">= one"} {
		if _, err := gantry.ParseConstraint(bad); err == nil {
			t.Errorf("ParseConstraint(%q) succeeded, want an error", bad)
		}
	}
}
