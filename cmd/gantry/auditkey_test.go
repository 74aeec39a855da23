package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/sqlite"
)

// auditFixture is a state directory and a key directory apart from it, as
// the secrets key and the audit key are kept in production.
type auditFixture struct {
	data, keys string
	// store is --store: "" for SQLite in data, else a PostgreSQL URL.
	store string
}

func newAuditFixture(t *testing.T) *auditFixture {
	return &auditFixture{data: t.TempDir(), keys: filepath.Join(t.TempDir(), "keys")}
}

// open starts a server on the fixture; the caller closes it.
func (f *auditFixture) open(t *testing.T) *Server {
	t.Helper()
	s := &Server{DataDir: f.data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", StoreURL: f.store,
		SecretsKey: filepath.Join(f.keys, "secrets.key"), Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	return s
}

// appendEntries makes n audited changes: each token created is one entry.
func appendEntries(t *testing.T, s *Server, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Client.CreateToken(context.Background(), api.CreateTokenRequest{Name: fmt.Sprintf("%s%d", prefix, i), Role: gantry.RoleDeployer}); err != nil {
			t.Fatal(err)
		}
	}
}

// verify runs `gantry audit verify --json` and returns its exit code and
// report, decoded loosely so that the test reads any version's output.
func verify(t *testing.T, s *Server) (int, map[string]any, string) {
	t.Helper()
	out, errs, code := runCLI(t, "unix://"+s.SocketPath, "audit", "verify", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("audit verify --json: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}
	return code, v, errs
}

func mustIntact(t *testing.T, s *Server, wantEntries int) map[string]any {
	t.Helper()
	code, v, errs := verify(t, s)
	if code != 0 || v["ok"] != true || v["entries"] != float64(wantEntries) {
		t.Fatalf("audit verify: exit %d, %v (%s); want intact with %d entries", code, v, errs, wantEntries)
	}
	return v
}

// tamper edits the state file as someone who can write it would: behind
// the server's back, past the append-only triggers.
func (f *auditFixture) tamper(t *testing.T, fn func(db *sql.DB)) {
	t.Helper()
	if f.store != "" {
		f.tamperPostgres(t, fn)
		return
	}
	db, err := sql.Open("sqlite", filepath.Join(f.data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `DROP TRIGGER IF EXISTS audit_no_update`, `DROP TRIGGER IF EXISTS audit_no_delete`)
	fn(db)
}

func mustExec(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// rechain recomputes every unkeyed hash from entry from on, and the stored
// head: all that someone without the key can do to hide an edit.
func rechain(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	rows, err := db.Query(`SELECT seq, time, actor, operation, app, env, release, result, code, prev_hash, hash FROM audit ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var es []*gantry.AuditEntry
	for rows.Next() {
		var e gantry.AuditEntry
		var tm string
		if err := rows.Scan(&e.Seq, &tm, &e.Actor, &e.Operation, &e.App, &e.Env, &e.Release, &e.Result, &e.Code, &e.PrevHash, &e.Hash); err != nil {
			t.Fatal(err)
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, tm); err != nil {
			t.Fatal(err)
		}
		es = append(es, &e)
	}
	rows.Close()
	prev := ""
	for _, e := range es {
		if e.Seq >= from {
			e.PrevHash = prev
			e.Hash = e.ComputeHash()
			// Literals, not placeholders: SQLite and PostgreSQL spell those
			// differently, and hashes are hex.
			if _, err := db.Exec(fmt.Sprintf(`UPDATE audit SET prev_hash = '%s', hash = '%s' WHERE seq = %d`, e.PrevHash, e.Hash, e.Seq)); err != nil {
				t.Fatal(err)
			}
		}
		prev = e.Hash
	}
	last := es[len(es)-1]
	if _, err := db.Exec(fmt.Sprintf(`UPDATE audit_head SET seq = %d, hash = '%s'`, last.Seq, last.Hash)); err != nil {
		t.Fatal(err)
	}
}

// TestAuditAgainstStateWriter: the three rewrites of the state file that
// an unkeyed chain with its head in the same file let through are caught
// once the chain is keyed and its head recorded beside the key, after a
// restart as much as by the running server.
func TestAuditAgainstStateWriter(t *testing.T) {
	testAuditAgainstStateWriter(t, newAuditFixture)
}

func testAuditAgainstStateWriter(t *testing.T, newFixture func(t *testing.T) *auditFixture) {
	tests := []struct {
		name   string
		attack func(t *testing.T, db *sql.DB)
	}{
		{"truncate and move the head back", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit WHERE seq > 3`,
				`UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)`)
		}},
		{"edit a row and recompute the hashes", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit SET actor = 'mallory' WHERE seq = 2`)
			rechain(t, db, 2)
		}},
		{"delete the tail and the stored head", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit`, `DELETE FROM audit_head`)
		}},
		{"delete the tail, recompute and append", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit WHERE seq > 2`)
			mustExec(t, db, `INSERT INTO audit SELECT seq + 1, time, 'mallory', operation, app, env, release, result, code, '', '' FROM audit WHERE seq = 2`)
			rechain(t, db, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t)
			appendEntries(t, s, "t", 5)
			mustIntact(t, s, 5)
			s.Close()
			f.tamper(t, func(db *sql.DB) { tt.attack(t, db) })
			s = f.open(t)
			defer s.Close()
			code, v, errs := verify(t, s)
			if code != 1 || v["ok"] != false {
				t.Fatalf("audit verify after %q: exit %d, %v (%s); want exit 1 naming the break", tt.name, code, v, errs)
			}
			t.Logf("break: %v", v["break"])
			// The running server must not heal the break by appending.
			appendEntries(t, s, "after", 2)
			if code, v, _ := verify(t, s); code != 1 {
				t.Errorf("audit verify after two more appends: exit %d, %v; want the break still reported", code, v)
			}
		})
	}
}

// TestAuditKeyedChainNormalUse: a new chain is keyed from its first entry,
// verifies while the server runs and after restarts, says what it checked
// and what it protects against, and the key file is 0600 outside --data.
func TestAuditKeyedChainNormalUse(t *testing.T) {
	testAuditKeyedChainNormalUse(t, newAuditFixture(t))
}

func testAuditKeyedChainNormalUse(t *testing.T, f *auditFixture) {
	s := f.open(t)
	mustIntact(t, s, 0)
	appendEntries(t, s, "a", 3)
	v := mustIntact(t, s, 3)
	if v["keyed"] != true || v["keyed_from"] != float64(1) {
		t.Errorf("report: keyed %v from %v, want keyed from entry 1", v["keyed"], v["keyed_from"])
	}
	for _, k := range []string{"checked", "protects", "does_not_protect"} {
		if l, _ := v[k].([]any); len(l) == 0 {
			t.Errorf("report %q is empty: %v", k, v)
		}
	}
	if !strings.Contains(fmt.Sprint(v["does_not_protect"]), "both the key and the state file") {
		t.Errorf("does_not_protect = %v, want it to name someone holding both the key and the state file", v["does_not_protect"])
	}
	st, err := os.Stat(filepath.Join(f.keys, "audit.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit key: %v, want a 0600 file beside the secrets key", err)
	}
	s.Close()
	for i := range 2 {
		s = f.open(t)
		mustIntact(t, s, 3+2*i)
		appendEntries(t, s, fmt.Sprint("r", i), 2)
		mustIntact(t, s, 5+2*i)
		s.Close()
	}
	s = f.open(t)
	defer s.Close()
	out, errs, code := runCLI(t, "unix://"+s.SocketPath, "audit", "verify")
	t.Logf("gantry audit verify:\n%s", out)
	if code != 0 || !strings.Contains(out, "audit trail intact: 7 entries") || !strings.Contains(out, "keyed from entry 1") {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errs)
	}
}

// TestAuditUnkeyedChainMigrates: entries written before the key existed
// stay verifiable, verify says from which entry the chain is keyed, and
// rewriting those old entries is caught as well.
func TestAuditUnkeyedChainMigrates(t *testing.T) {
	f := newAuditFixture(t)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := db.AppendAudit(ctx, &gantry.AuditEntry{Actor: "old", Operation: fmt.Sprint("POST op", i), Result: gantry.AuditOK}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := f.open(t)
	mustIntact(t, s, 4)
	appendEntries(t, s, "k", 2)
	v := mustIntact(t, s, 6)
	if v["keyed_from"] != float64(5) {
		t.Errorf("keyed_from = %v, want 5: entries 1-4 were written before the key", v["keyed_from"])
	}
	s.Close()
	f.tamper(t, func(db *sql.DB) {
		mustExec(t, db, `UPDATE audit SET actor = 'mallory' WHERE seq = 2`)
		rechain(t, db, 2)
	})
	s = f.open(t)
	defer s.Close()
	if code, v, _ := verify(t, s); code != 1 {
		t.Errorf("audit verify after rewriting an entry from before the key: exit %d, %v; want 1", code, v)
	}
}

// TestAuditKeyMissing: a server started without the key of a keyed chain
// does not make a new one; verify refuses to pass.
func TestAuditKeyMissing(t *testing.T) {
	testAuditKeyMissing(t, newAuditFixture(t))
}

func testAuditKeyMissing(t *testing.T, f *auditFixture) {
	s := f.open(t)
	appendEntries(t, s, "a", 2)
	s.Close()
	os.Remove(filepath.Join(f.keys, "audit.key"))
	s = f.open(t)
	defer s.Close()
	code, v, _ := verify(t, s)
	b, _ := v["break"].(map[string]any)
	if code != 1 || b["what"] != "key-missing" || !strings.Contains(fmt.Sprint(b["message"]), "keyed chain, key missing") {
		t.Fatalf("audit verify without the key: exit %d, %v; want exit 1, \"keyed chain, key missing\"", code, v)
	}
	if _, err := os.Stat(filepath.Join(f.keys, "audit.key")); err == nil {
		t.Error("a new audit key was made over a keyed chain")
	}
}

// TestAuditKeyCreatedOnce: servers starting together on a new machine all
// end up with the one key, whole.
func TestAuditKeyCreatedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "audit.key")
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := createKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = string(b)
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != 65 || k != keys[0] {
			t.Fatalf("key %d: %q, want the same 64 hex digits as key 0 (%q)", i, k, keys[0])
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, want 0600", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".audit-key-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestAuditNewStateOnPurpose: a state removed on purpose is reported until
// its head file is removed too; then the new state is anchored afresh.
func TestAuditNewStateOnPurpose(t *testing.T) {
	f := newAuditFixture(t)
	s := f.open(t)
	appendEntries(t, s, "a", 2)
	head := mustIntact(t, s, 2)["head_path"].(string)
	s.Close()
	for _, n := range []string{"state.db", "state.db-wal", "state.db-shm"} {
		os.Remove(filepath.Join(f.data, n))
	}
	s = f.open(t)
	if code, v, _ := verify(t, s); code != 1 {
		t.Errorf("audit verify of a removed state: exit %d, %v; want 1", code, v)
	}
	s.Close()
	if err := os.Remove(head); err != nil {
		t.Fatal(err)
	}
	s = f.open(t)
	defer s.Close()
	mustIntact(t, s, 0)
	appendEntries(t, s, "b", 1)
	mustIntact(t, s, 1)
}
