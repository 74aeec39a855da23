package main

import (
	"context"
	"encoding/json"
	neturl "net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
	"github.com/gantry-dev/gantry/sqlite"
)

// TestStoreCopy moves a state made by a real server on SQLite (a few
// deploys, a promotion, an approval, a lock, a secret, tokens, the audit
// chain) into PostgreSQL, and starts a server on the copy: status and
// history read the same, the audit chain verifies under the same key, and
// the running instances are re-attached. A copy of a running server's
// state, and a copy into a store that is not empty, are refused (exit 3).
func TestStoreCopy(t *testing.T) {
	needTools(t)
	pg := pgtest.Start(t)
	to := pgStore(t, pg, "copy", "moved")
	data, keys := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	var cur *Server
	keepServer(t, &cur)
	s := openServerOn(t, data, "", keys)
	cur = s
	repo := helloRepo(t)
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	cli("app", "add", "hello", "--repo", repo)
	cli("deploy", "test", "--ref", "v1.0.0")
	cli("promote", "test", "prod")
	cli("deploy", "test", "--ref", "main")
	cli("approve", "prod", "--release", "1.1.0")
	if err := s.Client.SetSecret(context.Background(), "hello", "test", "API_KEY", "s3cret-value"); err != nil {
		t.Fatal(err)
	}
	cli("lock", "prod", "--reason", "moving the state")
	status, hist, histTest := stripVolatile(t, cli("status", "--json")), cli("history", "prod", "--json"), cli("history", "test", "--json")
	entries := auditEntries(t, s)
	mustIntact(t, s, entries)

	copyArgs := []string{"store", "copy", "--data", data, "--secrets-key", filepath.Join(keys, "secrets.key"), "--to", to}
	if _, errs, code := runCLI(t, "", copyArgs...); code != 3 || !strings.Contains(errs, "stop it first") {
		t.Fatalf("store copy of a running server's state: exit %d, %q; want 3", code, errs)
	}
	s.Close()
	cur = nil

	out, errs, code := runCLI(t, "", append(copyArgs, "--json", "--artifacts")...)
	if code != 0 {
		t.Fatalf("store copy: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("progress:\n%s", errs)
	var r CopyReport
	mustJSON(t, out, &r)
	rows := map[string]int{}
	for _, tb := range r.Tables {
		rows[tb.Name] = tb.Rows
		if !tb.Verified {
			t.Errorf("table %s not verified", tb.Name)
		}
	}
	if rows["deployments"] != 3 || rows["locks"] != 1 || rows["approvals"] != 1 || rows["secrets"] != 1 || rows["audit"] != entries || rows["steps"] == 0 || len(r.Tables) != len(stateTables) {
		t.Errorf("copied rows %v; want 3 deployments, 1 lock, 1 approval, 1 secret, %d audit entries, every table", rows, entries)
	}
	wantArtifactsIn(t, data, to, r.Artifacts)
	if r.Audit == nil || !r.Audit.OK || !r.Audit.Keyed || r.AuditHead == "" {
		t.Errorf("audit on the destination: %+v, head %q; want intact, keyed, its head recorded", r.Audit, r.AuditHead)
	}
	if _, errs, code := runCLI(t, "", copyArgs...); code != 3 || !strings.Contains(errs, "not empty") {
		t.Errorf("store copy into a store that is not empty: exit %d, %q; want 3", code, errs)
	}

	// The same state copied by naming its file, with the summary for people.
	out, errs, code = runCLI(t, "", "store", "copy", "--from", filepath.Join(data, "state.db"), "--secrets-key", filepath.Join(keys, "secrets.key"), "--to", pgStore(t, pg, "copy2", "gantry"))
	if code != 0 || !strings.Contains(out, "deployments       3 rows, all equal") || !strings.Contains(out, "audit chain intact on the destination") {
		t.Errorf("store copy --from: exit %d\n%s%s", code, out, errs)
	}

	s = openServerOn(t, data, to, keys)
	cur = s
	if got := stripVolatile(t, cli("status", "--json")); got != status {
		t.Errorf("status on the copy:\n%s\nwant\n%s", got, status)
	}
	if got := cli("history", "prod", "--json"); got != hist {
		t.Errorf("history prod on the copy:\n%s\nwant\n%s", got, hist)
	}
	if got := cli("history", "test", "--json"); got != histTest {
		t.Errorf("history test on the copy:\n%s\nwant\n%s", got, histTest)
	}
	mustIntact(t, s, entries)
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	// The copy goes on: the lock holds, the secret unseals, the chain grows.
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 3 {
		t.Errorf("promote to the locked prod on the copy: exit %d, %q; want 3", code, errs)
	}
	if v, ok := s.Secrets.resolve(context.Background(), "hello", "test", "API_KEY"); !ok || v != "s3cret-value" {
		t.Errorf("secret on the copy: %q, %v; want it unsealed", v, ok)
	}
	cli("unlock", "prod")
	cli("promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.0")
	var d []gantry.Deployment
	if err := json.Unmarshal([]byte(cli("history", "prod", "--json")), &d); err != nil || len(d) != 2 || d[0].ID != 4 {
		t.Errorf("history prod after a promotion on the copy: %+v, %v; want deployment #4 after #2", d, err)
	}
	mustIntact(t, s, auditEntries(t, s))
}

// TestSameRows: the comparison after a copy takes the two stores' forms of
// one value as equal (integer widths, text as bytes, JSON with its keys
// reordered) and names the table, row and column of any real difference.
func TestSameRows(t *testing.T) {
	tbl := copyTable{name: "environments", columns: []string{"id", "name", "doc"}, json: map[string]bool{"doc": true}}
	src := [][]any{{int64(1), "test", `{"b": 1, "a": [1, 2]}`}, {int64(2), []byte("prod"), nil}}
	same := [][]any{{int32(1), []byte("test"), `{"a":[1,2],"b":1}`}, {int64(2), "prod", nil}}
	if err := sameRows(tbl, src, same); err != nil {
		t.Errorf("sameRows of equal rows: %v", err)
	}
	for _, tc := range []struct {
		got  [][]any
		want string
	}{
		{[][]any{same[0]}, "1 rows on the destination, 2 in the source"},
		{[][]any{same[0], {int64(2), "prod", `{}`}}, "row 2 column doc differs"},
		{[][]any{{int64(1), "tests", same[0][2]}, same[1]}, "row 1 column name differs"},
		{[][]any{{"1", "test", same[0][2]}, same[1]}, "row 1 column id differs"},
	} {
		if err := sameRows(tbl, src, tc.got); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sameRows: got %v, want %q", err, tc.want)
		}
	}
}

// wantArtifactsIn: every artifact of every release in data's state was
// copied into the store at url, and n says so.
func wantArtifactsIn(t *testing.T, data, url string, n int) {
	t.Helper()
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rels, err := src.ListReleases(ctx, gantry.ReleaseFilter{App: "hello"})
	if err != nil || len(rels) == 0 {
		t.Fatalf("releases: %v, %v", rels, err)
	}
	u, _ := neturl.Parse(url)
	dst, err := openPostgres(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	digests := map[string]bool{}
	for _, rel := range rels {
		for svc, a := range rel.Artifacts {
			digests[a.Digest] = true
			if ok, err := dst.Artifacts().Has(ctx, a.Digest); !ok || err != nil {
				t.Errorf("release %s, service %s: artifact %s in the store: %v, %v", rel.ID, svc, a.Digest, ok, err)
			}
		}
	}
	if n < len(digests) {
		t.Errorf("store copy --artifacts copied %d artifacts; the releases have %d", n, len(digests))
	}
}
