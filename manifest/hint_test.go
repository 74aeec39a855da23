package manifest

import "testing"

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"instances", "instances", 0},
		{"instnaces", "instances", 1}, // swap
		{"instance", "instances", 1},  // missing letter
		{"helth", "health", 1},
		{"kitten", "sitting", 3},
		{"héllo", "hello", 1}, // counts letters, not bytes
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := keys()["services.<service>"]
	tests := []struct{ in, want string }{
		{"instnaces", "instances"},
		{"rn", "run"},
		{"ready-delay", "ready_delay"},
		{"port", ""},        // short and far: a suggestion would mislead
		{"replicas", ""},    // a different word entirely
		{"healthcheck", ""}, // beyond three edits
	}
	for _, tt := range tests {
		if got := closest(tt.in, known); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "gantry.yml", Line: 3, Column: 5, Path: "services.web.run", Message: "required key missing"}, "gantry.yml:3:5: services.web.run: required key missing"},
		{Problem{File: "gantry.yml", Line: 1, Column: 1, Message: "manifest is empty"}, "gantry.yml:1:1: manifest is empty"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	e := &Error{Problems: []Problem{tests[0].p, tests[1].p}}
	if got, want := e.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
