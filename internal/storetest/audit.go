package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
)

// auditSealedTest: a chain written unkeyed and then sealed with a key goes
// on from where it was; every append after the seal is keyed, reported to
// the seal's callback once committed and in chain order (the server records
// the head outside the state from it, so it must never step back), and the
// whole chain checks under the key from the first keyed entry on. It runs
// with concurrent appends, which the store must serialise.
func auditSealedTest(t *testing.T, f *fixture) {
	s, ok := f.s.(gantry.KeyedAuditLog)
	if !ok {
		t.Fatalf("%T does not implement gantry.KeyedAuditLog", f.s)
	}
	for i := range 2 {
		mustOK(t, "AppendAudit", s.AppendAudit(f.ctx, &gantry.AuditEntry{Actor: "old", Operation: fmt.Sprint("op", i), Result: gantry.AuditOK}))
	}
	keyed, err := s.AuditKeyed(f.ctx)
	mustOK(t, "AuditKeyed", err)
	if keyed {
		t.Fatal("AuditKeyed of an unkeyed chain: true")
	}
	key := []byte(strings.Repeat("k", 32))
	var mu sync.Mutex
	var seen []*gantry.AuditEntry
	s.SealAudit(key, func(e *gantry.AuditEntry) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
	})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for j := range 5 {
				if err := s.AppendAudit(f.ctx, &gantry.AuditEntry{Actor: fmt.Sprint("w", w), Operation: fmt.Sprint("op", j), Result: gantry.AuditOK}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("the seal's callback saw %d appends, want 20", len(seen))
	}
	for i, e := range seen {
		if e.Seq != int64(i+3) || !e.Keyed() {
			t.Fatalf("callback %d: entry %d (keyed %v), want entry %d, keyed: in chain order", i, e.Seq, e.Keyed(), i+3)
		}
	}
	keyed, err = s.AuditKeyed(f.ctx)
	mustOK(t, "AuditKeyed", err)
	if !keyed {
		t.Error("AuditKeyed after keyed appends: false")
	}
	all, err := s.ListAudit(f.ctx, gantry.AuditFilter{})
	mustOK(t, "ListAudit", err)
	seq, hash, err := s.AuditHead(f.ctx)
	mustOK(t, "AuditHead", err)
	head := &gantry.AuditHeadRecord{Seq: seq, Hash: hash, KeyedFrom: 3}
	if r := gantry.CheckAudit(all, seq, hash, gantry.AuditAnchor{Key: key, Head: head}); !r.OK || r.KeyedFrom != 3 || r.Entries != 22 {
		t.Errorf("CheckAudit: ok %v, %d entries keyed from %d (%v); want 22 intact, keyed from 3", r.OK, r.Entries, r.KeyedFrom, r.Break)
	}
	if r := gantry.CheckAudit(all, seq, hash, gantry.AuditAnchor{Key: []byte(strings.Repeat("x", 32)), Head: head}); r.OK {
		t.Error("CheckAudit under another key: intact, want a break")
	}
	page, err := s.ListAudit(f.ctx, gantry.AuditFilter{AfterSeq: 20, Limit: 1})
	mustOK(t, "ListAudit after 20", err)
	if len(page) != 1 || page[0].Seq != 21 {
		t.Errorf("ListAudit after 20, limit 1: %d entries, want entry 21", len(page))
	}
}
