package main

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/postgres"
)

// TestStoreFlag checks what --store accepts and that a store lacking part of
// the server's state is refused before anything connects, saying what is
// missing and without the URL's password.
func TestStoreFlag(t *testing.T) {
	ctx := t.Context()
	for _, bad := range []string{"mysql://u@h/db", "state.db", "://"} {
		_, err := openState(ctx, bad, t.TempDir())
		if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(gantry.ErrorMessage(err), "postgres://") {
			t.Errorf("--store %s: got %v, want EINVALID naming the accepted form", bad, err)
		}
	}

	missing := missingAbilities(any((*postgres.DB)(nil)))
	if len(missing) == 0 {
		t.Skip("the PostgreSQL store is complete: --store postgres:// is served (covered by the postgres tests)")
	}
	// Port 1 on loopback: nothing listens, so a refusal that connected
	// first would fail differently.
	_, err := openState(ctx, "postgres://bob:s3cret@127.0.0.1:1/gantry?sslmode=disable", t.TempDir())
	msg := gantry.ErrorMessage(err)
	if gantry.ErrorCode(err) != gantry.EINVALID || !strings.Contains(msg, "does not support") {
		t.Fatalf("--store postgres:// without %v: got %v, want EINVALID saying what is not supported", missing, err)
	}
	for _, m := range missing {
		if !strings.Contains(msg, m) {
			t.Errorf("refusal %q does not name %q", msg, m)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("refusal %q shows the password", msg)
	}
}

func TestMissingAbilities(t *testing.T) {
	if got := missingAbilities(struct{}{}); len(got) != 4 {
		t.Errorf("missingAbilities of nothing: got %q, want all four", got)
	}
}
