package storetest

import (
	"regexp"
	"strings"
	"testing"
)

func TestDBName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]{1,48}$`)
	tests := []struct{ in, want string }{
		{"st001_App_CreateFind", "st001_app_createfind"},
		{"st002_Lock/Concurrent-é", "st002_lock_concurrent__"},
		{"st003_" + strings.Repeat("x", 60), "st003_" + strings.Repeat("x", 42)},
	}
	for _, tt := range tests {
		got := dbName(tt.in)
		if got != tt.want {
			t.Errorf("dbName(%q): got %q, want %q", tt.in, got, tt.want)
		}
		if !valid.MatchString(got) {
			t.Errorf("dbName(%q) = %q: not a valid db name", tt.in, got)
		}
	}
}
