package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestSealAudit: once sealed, entries are keyed and chain on from the
// unkeyed ones, and the after-commit call sees every entry exactly once in
// chain order even under concurrent appends, so that a head recorded from
// it never moves back.
func TestSealAudit(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	for i := range 2 {
		if err := db.AppendAudit(ctx, &gantry.AuditEntry{Actor: "old", Operation: fmt.Sprint("op", i), Result: gantry.AuditOK}); err != nil {
			t.Fatal(err)
		}
	}
	if keyed, err := db.AuditKeyed(ctx); err != nil || keyed {
		t.Fatalf("AuditKeyed of an unkeyed chain: %v, %v", keyed, err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	var mu sync.Mutex
	var seen []*gantry.AuditEntry
	db.SealAudit(key, func(e *gantry.AuditEntry) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				if err := db.AppendAudit(ctx, &gantry.AuditEntry{Actor: fmt.Sprint("w", w), Operation: fmt.Sprint("op", j), Result: gantry.AuditOK}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("after-commit calls: %d, want 20", len(seen))
	}
	for i, e := range seen {
		if e.Seq != int64(i+3) || !e.Keyed() || e.Hash != e.ComputeMAC(key) {
			t.Fatalf("call %d: entry %d keyed %v; want entry %d with its MAC", i, e.Seq, e.Keyed(), i+3)
		}
		if i > 0 && e.PrevHash != seen[i-1].Hash {
			t.Fatalf("call %d: entry %d does not follow entry %d", i, e.Seq, seen[i-1].Seq)
		}
	}
	if keyed, err := db.AuditKeyed(ctx); err != nil || !keyed {
		t.Errorf("AuditKeyed after keyed appends: %v, %v", keyed, err)
	}
	all, err := db.ListAudit(ctx, gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := &gantry.AuditHeadRecord{Seq: seq, Hash: hash, KeyedFrom: 3}
	if r := gantry.CheckAudit(all, seq, hash, gantry.AuditAnchor{Key: key, Head: head}); !r.OK || r.KeyedFrom != 3 {
		t.Errorf("CheckAudit: ok %v keyed from %d (%v), want intact, keyed from 3", r.OK, r.KeyedFrom, r.Break)
	}
}
