package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestDBCommands runs the db verbs against a real PostgreSQL: plan, snapshot,
// snapshots, restore (confirmation refused, then given), status, contract
// with nothing to contract, and copy.
func TestDBCommands(t *testing.T) {
	pg := pgtest.Start(t)
	dbURL := pg.CreateDB(t, "shop_prod")
	data := t.TempDir()
	migs := t.TempDir()
	if err := os.WriteFile(filepath.Join(migs, "01_create_users.yaml"), []byte("operations:\n  - create_table:\n      name: users\n      columns:\n        - {name: id, type: serial, pk: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GANTRY_DB_URL": dbURL, "GANTRY_DATA": data, "GANTRY_SERVER": "http://127.0.0.1:1", "PATH": os.Getenv("PATH")}
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
		code := m.Run(context.Background(), append([]string{"--app", "shop"}, args...))
		return code, out.String(), errb.String()
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // substring of stdout (or stderr when code != 0)
	}{
		{name: "plan", args: []string{"db", "plan", "prod", "--migrations", migs, "--live=false"}, out: "apply 01_create_users"},
		{name: "plan live", args: []string{"db", "plan", "prod", "--migrations", migs}, out: "expand 01_create_users"},
		{name: "status", args: []string{"db", "status", "prod"}, out: "engine pgroll"},
		{name: "snapshot", args: []string{"db", "snapshot", "prod", "--reason", "by hand"}, out: "snapshot "},
		{name: "contract nothing", args: []string{"db", "contract", "prod"}, code: 2, out: "nothing to contract"},
		{name: "rollback nothing", args: []string{"db", "rollback", "prod"}, code: 2, out: "nothing to roll back"},
		{name: "copy", args: []string{"db", "copy", "prod", "testnew", "--to-url", pg.URLFor("shop_testnew")}, out: "copied prod into testnew by dump"},
		{name: "copy usage", args: []string{"db", "copy", "prod", "testnew"}, code: 2, out: "--to-url is required"},
	}
	for _, tt := range tests {
		code, out, errOut := run(tt.stdin, tt.args...)
		got := out
		if tt.code != 0 {
			got = errOut
		}
		if code != tt.code || !strings.Contains(got, tt.out) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d with %q", tt.name, code, out, errOut, tt.code, tt.out)
		}
	}

	code, out, _ := run("", "--json", "db", "snapshots", "prod")
	var snaps []gantry.Snapshot
	if err := json.Unmarshal([]byte(out), &snaps); code != 0 || err != nil || len(snaps) != 1 || snaps[0].Reason != "by hand" {
		t.Fatalf("snapshots: exit %d, %q (%v); want one snapshot", code, out, err)
	}
	if code, _, errOut := run("no\n", "db", "restore", "prod", snaps[0].Name); code != 2 || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("restore answered no: exit %d, %q; want 2, not confirmed", code, errOut)
	}
	if code, out, errOut := run("prod\n", "db", "restore", "prod", snaps[0].Name); code != 0 || !strings.Contains(out, "restored") {
		t.Errorf("restore confirmed: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = run("", "--json", "db", "status", "prod")
	var st gantry.DatabaseStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Ledger) != 1 || st.Ledger[0].Phase != gantry.PhaseRestore {
		t.Errorf("status after restore: exit %d, %q (%v); want a ledger of one restore", code, out, err)
	}
	if strings.Contains(out, dbURL) {
		t.Errorf("status shows the database URL")
	}
}
