package gantry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Audit results.
const (
	AuditOK     = "ok"
	AuditDenied = "denied"
	AuditFailed = "failed"
)

// AuditEntry is one line of the audit trail: a state change or a denied
// attempt. Entries are chained: each carries the hash of the one before, so
// that a changed, removed or reordered entry breaks the chain.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Operation string    `json:"operation"`
	App       string    `json:"app,omitempty"`
	Env       string    `json:"env,omitempty"`
	Release   string    `json:"release,omitempty"`
	Result    string    `json:"result"`
	// Code is the error code of a denied or failed operation.
	Code     string `json:"code,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ComputeHash returns the hash of e's content and PrevHash. The encoding is
// canonical: every field length-prefixed in a fixed order, times in UTC
// with nanoseconds, so no two different entries encode the same. Seq is
// left out on purpose: it is the position, checked by the chain itself.
func (e *AuditEntry) ComputeHash() string {
	h := sha256.New()
	for _, f := range []string{
		"gantry-audit-v1", e.PrevHash, e.Time.UTC().Format(time.RFC3339Nano),
		e.Actor, e.Operation, e.App, e.Env, e.Release, e.Result, e.Code,
	} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	App   string
	Env   string
	Since time.Time
	// AfterSeq pages forwards.
	AfterSeq int64
	Limit    int
}

// AuditLog is the append-only audit trail. Implementations: sqlite.
type AuditLog interface {
	// AppendAudit sets e.Seq, e.PrevHash and e.Hash and stores e, in one
	// transaction so that concurrent appends chain correctly.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns entries oldest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
	// AuditHead returns the last entry's seq and hash (0 and "" when empty),
	// kept apart from the entries so that removing the newest is detected.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
}

// AuditBreak says where and how an audit chain is broken.
type AuditBreak struct {
	Seq  int64  `json:"seq"`
	What string `json:"what"` // "changed", "removed", "reordered"
	Msg  string `json:"message"`
}

func (b *AuditBreak) Error() string { return b.Msg }

// VerifyAudit checks a whole chain, oldest first, against the head that the
// log recorded. It returns nil when the chain is intact.
func VerifyAudit(entries []*AuditEntry, headSeq int64, headHash string) *AuditBreak {
	byHash := make(map[string]int64, len(entries))
	for _, e := range entries {
		byHash[e.Hash] = e.Seq
	}
	prevHash, prevSeq := "", int64(0)
	for _, e := range entries {
		if got := e.ComputeHash(); got != e.Hash {
			return &AuditBreak{Seq: e.Seq, What: "changed", Msg: fmt.Sprintf("entry %d was changed: its content does not match its hash", e.Seq)}
		}
		if e.PrevHash != prevHash {
			if at, ok := byHash[e.PrevHash]; ok && at != prevSeq {
				return &AuditBreak{Seq: e.Seq, What: "reordered", Msg: fmt.Sprintf("entry %d was reordered: it follows entry %d in the chain but sits after entry %d", e.Seq, at, prevSeq)}
			}
			return &AuditBreak{Seq: e.Seq, What: "removed", Msg: fmt.Sprintf("entries were removed before entry %d: it does not follow entry %d", e.Seq, prevSeq)}
		}
		if e.Seq != prevSeq+1 {
			return &AuditBreak{Seq: e.Seq, What: "removed", Msg: fmt.Sprintf("entries %d to %d were removed", prevSeq+1, e.Seq-1)}
		}
		prevHash, prevSeq = e.Hash, e.Seq
	}
	if headSeq != prevSeq || headHash != prevHash {
		if headSeq > prevSeq {
			return &AuditBreak{Seq: prevSeq + 1, What: "removed", Msg: fmt.Sprintf("entries %d to %d were removed from the end", prevSeq+1, headSeq)}
		}
		return &AuditBreak{Seq: prevSeq, What: "changed", Msg: fmt.Sprintf("the last entry is %d but the log's head records entry %d", prevSeq, headSeq)}
	}
	return nil
}
