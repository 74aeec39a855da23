package gantry

import (
	"net/http"
	"testing"
)

// TestHTTPStatus pins the one map from error codes to HTTP statuses that
// the API, the dashboard and the router's admin API answer with.
func TestHTTPStatus(t *testing.T) {
	for code, want := range map[string]int{
		"":            http.StatusOK,
		EINVALID:      http.StatusBadRequest,
		EUNAUTHORIZED: http.StatusUnauthorized,
		EFORBIDDEN:    http.StatusForbidden,
		EPOLICY:       http.StatusForbidden,
		ENOTFOUND:     http.StatusNotFound,
		ECONFLICT:     http.StatusConflict,
		EFAILED:       http.StatusUnprocessableEntity,
		EUNAVAILABLE:  http.StatusServiceUnavailable,
		EINTERNAL:     http.StatusInternalServerError,
		"no-such":     http.StatusInternalServerError,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	if got, want := CommandLine("db rollback", "prod", "shop", "--force"), "gantry db rollback prod --force --app shop"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := CommandLine("rollback", "test", ""), "gantry rollback test"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
