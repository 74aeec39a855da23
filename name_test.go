package gantry

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"shop", true}, {"test-new", true}, {"a", true}, {"3", true}, {strings.Repeat("a", 63), true},
		{"", false}, {"-shop", false}, {"shop-", false}, {"Shop", false}, {"shop_app", false}, {"shop.app", false},
		{"shöp", false}, {strings.Repeat("a", 64), false},
	} {
		err := ValidName("environment", tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok %t", tt.name, err, tt.ok)
		}
		if err != nil && (ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "invalid environment name")) {
			t.Errorf("ValidName(%q): %v, want EINVALID naming the kind", tt.name, err)
		}
	}
}
