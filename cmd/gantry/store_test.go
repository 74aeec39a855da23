package main

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestStoreFlag checks what --store accepts, and that a PostgreSQL store
// that cannot be reached is an error that does not show the password.
func TestStoreFlag(t *testing.T) {
	ctx := t.Context()
	for _, bad := range []string{"mysql://u@h/db", "state.db", "://"} {
		_, err := openState(ctx, bad, t.TempDir())
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "postgres://") {
			t.Errorf("--store %s: got %v, want EINVALID naming the accepted form", bad, err)
		}
	}

	// Port 1 on loopback: nothing listens. The error must not show the
	// URL's password, which ends up in logs.
	_, err := openState(ctx, "postgres://bob:s3cret@127.0.0.1:1/gantry?sslmode=disable&connect_timeout=2", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("--store postgres:// of nothing: got %v, want an error without the password", err)
	}
}
