package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
)

func TestSecretBox(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := newSecretBox(db, filepath.Join(data, "keys", "k"), data); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("a key inside the state directory: %v, want invalid", err)
	}
	keyPath := filepath.Join(t.TempDir(), "cfg", "secrets.key")
	box, err := newSecretBox(db, keyPath, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := box.resolve(ctx, "shop", "test", "API_KEY"); ok {
		t.Error("resolve before any secret is set: found one")
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Errorf("the key file exists before the first secret is set: %v", err)
	}
	if err := box.SetSecret(ctx, "shop", "test", "API_KEY", "hunter2-value"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	sealed, err := db.FindSecret(ctx, "shop", "test", "API_KEY")
	if err != nil || bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatalf("stored value %q (%v): want it sealed", sealed, err)
	}
	if v, ok := box.resolve(ctx, "shop", "test", "API_KEY"); !ok || v != "hunter2-value" {
		t.Errorf("resolve: %q %v, want the value", v, ok)
	}
	// A sealed value moved to another environment does not open there.
	if err := db.PutSecret(ctx, "shop", "prod", "API_KEY", sealed); err != nil {
		t.Fatal(err)
	}
	if _, ok := box.resolve(ctx, "shop", "prod", "API_KEY"); ok {
		t.Error("a sealed value copied to prod opened there")
	}
	// Another key does not open it either.
	other, err := newSecretBox(db, filepath.Join(t.TempDir(), "other.key"), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetSecret(ctx, "shop", "x", "Y", "z"); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.resolve(ctx, "shop", "test", "API_KEY"); ok {
		t.Error("a value opened with another key")
	}
}
