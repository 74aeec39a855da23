package gantry_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var testAuditKey = []byte("0123456789abcdef0123456789abcdef")

// chain builds n entries, the first unkeyed ones unkeyed and the rest
// sealed with key, and the head an anchor would have recorded.
func chain(n, unkeyed int, key []byte) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord) {
	var es []*gantry.AuditEntry
	prev := ""
	for i := 1; i <= n; i++ {
		e := &gantry.AuditEntry{Seq: int64(i), Time: time.Date(2026, 12, 7, 10, i, 0, 0, time.UTC), Actor: "alice",
			Operation: "POST deploy", App: "shop", Env: "test", Release: fmt.Sprint("1.0.", i), Result: gantry.AuditOK, PrevHash: prev}
		if i > unkeyed {
			e.Seal(key)
		} else {
			e.Seal(nil)
		}
		es, prev = append(es, e), e.Hash
	}
	return es, &gantry.AuditHeadRecord{Seq: int64(n), Hash: prev, KeyedFrom: int64(unkeyed + 1)}
}

func last(es []*gantry.AuditEntry) (int64, string) {
	if len(es) == 0 {
		return 0, ""
	}
	return es[len(es)-1].Seq, es[len(es)-1].Hash
}

// rehash recomputes unkeyed hashes from index i on: what can be done
// without the key.
func rehash(es []*gantry.AuditEntry, i int) {
	for ; i < len(es); i++ {
		es[i].PrevHash = ""
		if i > 0 {
			es[i].PrevHash = es[i-1].Hash
		}
		es[i].Seal(nil)
	}
}

func TestCheckAudit(t *testing.T) {
	tests := []struct {
		name     string
		unkeyed  int
		tamper   func([]*gantry.AuditEntry, *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte)
		wantWhat string
		wantSeq  int64
	}{
		{"intact", 0, nil, "", 0},
		{"intact, keyed from 4", 3, nil, "", 0},
		{"truncated and head moved back", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return es[:3], h, testAuditKey
		}, "removed", 4},
		{"edited and rehashed", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			es[1].Actor = "mallory"
			rehash(es, 1)
			return es, h, testAuditKey
		}, "unkeyed", 2},
		{"edited, MAC kept", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			es[1].Actor = "mallory"
			return es, h, testAuditKey
		}, "changed", 2},
		{"everything deleted", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return nil, h, testAuditKey
		}, "removed", 1},
		{"old unkeyed entry edited and rehashed", 3, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			es[0].Actor = "mallory"
			rehash(es[:3], 0)
			return es, h, testAuditKey
		}, "removed", 4},
		{"all rehashed unkeyed", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			rehash(es, 0)
			return es, h, testAuditKey
		}, "unkeyed", 1},
		{"wrong key", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return es, h, []byte("another key, another key, 32 byt")
		}, "changed", 1},
		{"key missing", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return es, h, nil
		}, "key-missing", 1},
		{"head missing", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return es, nil, testAuditKey
		}, "head-missing", 5},
		{"head trails by one (a stop before it was recorded)", 0, func(es []*gantry.AuditEntry, h *gantry.AuditHeadRecord) ([]*gantry.AuditEntry, *gantry.AuditHeadRecord, []byte) {
			return es, &gantry.AuditHeadRecord{Seq: 4, Hash: es[3].Hash, KeyedFrom: 1}, testAuditKey
		}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, head := chain(5, tt.unkeyed, testAuditKey)
			key := testAuditKey
			if tt.tamper != nil {
				es, head, key = tt.tamper(es, head)
			}
			seq, hash := last(es) // the state's own head, always moved along
			r := gantry.CheckAudit(es, seq, hash, gantry.AuditAnchor{Key: key, Head: head})
			switch {
			case tt.wantWhat == "" && !r.OK:
				t.Fatalf("intact chain: %v", r.Break)
			case tt.wantWhat == "":
				if r.KeyedFrom != int64(tt.unkeyed+1) || !r.Keyed {
					t.Errorf("keyed %v from %d, want keyed from %d", r.Keyed, r.KeyedFrom, tt.unkeyed+1)
				}
			case r.OK:
				t.Fatalf("tampered chain verified; want %s at %d", tt.wantWhat, tt.wantSeq)
			case r.Break.What != tt.wantWhat || r.Break.Seq != tt.wantSeq:
				t.Errorf("got %s at %d (%s), want %s at %d", r.Break.What, r.Break.Seq, r.Break.Msg, tt.wantWhat, tt.wantSeq)
			}
		})
	}
}

// TestVerifyAuditUnkeyed: without anything from outside the state an
// unkeyed chain verifies as before, and a keyed one refuses to pass.
func TestVerifyAuditUnkeyed(t *testing.T) {
	es, _ := chain(3, 3, nil)
	seq, hash := last(es)
	if b := gantry.VerifyAudit(es, seq, hash); b != nil {
		t.Errorf("unkeyed chain: %v", b)
	}
	es, _ = chain(3, 0, testAuditKey)
	seq, hash = last(es)
	if b := gantry.VerifyAudit(es, seq, hash); b == nil || b.What != "key-missing" {
		t.Errorf("keyed chain without the key: %v, want key-missing", b)
	}
}
