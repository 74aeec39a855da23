package dbchange

import (
	"net/url"
	"testing"
)

// TestWithSearchPath: the schema goes into libpq's options, replacing a
// search_path already there and keeping every other option.
func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		in, want string // want: the options parameter
	}{
		{"postgres://u:p@db:5432/shop?sslmode=disable", "-c search_path=public_02"},
		{"postgres://db/shop?options=-c%20statement_timeout%3D5s", "-c statement_timeout=5s -c search_path=public_02"},
		{"postgresql://db/shop?options=-c%20search_path%3Dold%20-c%20work_mem%3D4MB", "-c work_mem=4MB -c search_path=public_02"},
		{"postgres://db/shop?options=-csearch_path%3Dold", "-c search_path=public_02"},
	}
	for _, tt := range tests {
		got, err := withSearchPath(tt.in, "public_02")
		if err != nil {
			t.Fatalf("withSearchPath(%q): %v", tt.in, err)
		}
		u, _ := url.Parse(got)
		if o := u.Query().Get("options"); o != tt.want {
			t.Errorf("withSearchPath(%q) options = %q, want %q", tt.in, o, tt.want)
		}
		if u.User.String() != mustParse(t, tt.in).User.String() || u.Host != mustParse(t, tt.in).Host {
			t.Errorf("withSearchPath(%q) = %q: user or host changed", tt.in, got)
		}
	}
	if _, err := withSearchPath("mysql://db/shop", "x"); err == nil {
		t.Errorf("withSearchPath(mysql://…) succeeded, want an error")
	}
}

func mustParse(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
