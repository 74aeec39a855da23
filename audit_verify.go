package gantry

import (
	"context"
	"fmt"
)

// AuditBreak says where and how an audit chain is broken.
type AuditBreak struct {
	Seq int64 `json:"seq"`
	// What: "changed", "removed", "reordered", "unkeyed" (an unkeyed entry
	// where the chain is keyed), "key-missing", "head-missing".
	What string `json:"what"`
	Msg  string `json:"message"`
}

func (b *AuditBreak) Error() string { return b.Msg }

// AuditHeadRecord is the head of a keyed chain as recorded outside the
// state after each append: the newest entry's seq and hash, and the first
// keyed entry. The state cannot move it back, so a chain cut short, or cut
// and rebuilt, no longer reaches it.
type AuditHeadRecord struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// KeyedFrom is the first entry sealed with the key; entries before it
	// were written before the key existed.
	KeyedFrom int64 `json:"keyed_from"`
}

// AuditAnchor is what a verification knows from outside the state.
type AuditAnchor struct {
	// Key is the chain's key; nil when it is missing (or never existed).
	Key []byte
	// Head is the head recorded outside the state; nil when none is.
	Head *AuditHeadRecord
	// KeyPath and HeadPath name the files, for messages.
	KeyPath, HeadPath string
}

// AuditReport is the result of verifying the audit chain: what was checked
// and what the check does and does not protect against.
type AuditReport struct {
	OK      bool   `json:"ok"`
	Entries int    `json:"entries"`
	Head    string `json:"head,omitempty"`
	HeadSeq int64  `json:"head_seq"`
	// Keyed is set when the chain is sealed with a key from KeyedFrom on.
	Keyed     bool  `json:"keyed"`
	KeyedFrom int64 `json:"keyed_from,omitempty"`
	// AnchorSeq is the head recorded outside the state (0: none).
	AnchorSeq int64    `json:"anchor_seq,omitempty"`
	KeyPath   string   `json:"key_path,omitempty"`
	HeadPath  string   `json:"head_path,omitempty"`
	Checked   []string `json:"checked"`
	Protects  []string `json:"protects"`
	// Unprotected says what the verification cannot detect.
	Unprotected []string    `json:"does_not_protect"`
	Break       *AuditBreak `json:"break,omitempty"`
}

// AuditChecker verifies the audit chain against what lies outside the
// state. Implementations: cmd/gantry (the key and head files).
type AuditChecker interface {
	CheckAudit(ctx context.Context) (*AuditReport, error)
}

// VerifyAudit checks a whole chain, oldest first, against the head that the
// log recorded, knowing nothing from outside the state. It returns nil when
// the chain is intact.
func VerifyAudit(entries []*AuditEntry, headSeq int64, headHash string) *AuditBreak {
	return CheckAudit(entries, headSeq, headHash, AuditAnchor{}).Break
}

// CheckAudit checks a whole chain, oldest first, against the head the log
// recorded and against the anchor: keyed entries against the key, and the
// chain's end against the head recorded outside the state.
func CheckAudit(entries []*AuditEntry, headSeq int64, headHash string, a AuditAnchor) *AuditReport {
	r := &AuditReport{Entries: len(entries), Head: headHash, HeadSeq: headSeq, KeyPath: a.KeyPath, HeadPath: a.HeadPath}
	if a.Head != nil {
		r.AnchorSeq, r.KeyedFrom = a.Head.Seq, a.Head.KeyedFrom
	}
	r.Break = checkChain(entries, headSeq, headHash, a, r)
	r.OK = r.Break == nil
	r.Keyed = r.KeyedFrom > 0 && (a.Head != nil || len(entries) > 0 && entries[len(entries)-1].Keyed())
	r.describe(a)
	return r
}

func checkChain(entries []*AuditEntry, headSeq int64, headHash string, a AuditAnchor, r *AuditReport) *AuditBreak {
	byHash := make(map[string]int64, len(entries))
	for _, e := range entries {
		byHash[e.Hash] = e.Seq
	}
	prevHash, prevSeq := "", int64(0)
	var anchored bool
	var firstKeyed int64
	for _, e := range entries {
		// An entry is keyed if it says so, or if the head recorded outside
		// says the chain was keyed by then: an attacker who recomputes the
		// hashes without the key must turn keyed entries into unkeyed ones.
		mustKey := a.Head != nil && a.Head.KeyedFrom > 0 && e.Seq >= a.Head.KeyedFrom
		switch {
		case e.Keyed() && a.Key == nil:
			return &AuditBreak{Seq: e.Seq, What: "key-missing", Msg: fmt.Sprintf("keyed chain, key missing: entry %d on are sealed with the audit key, and the key file %s is missing; restore it", e.Seq, orUnknown(a.KeyPath))}
		case e.Keyed():
			if firstKeyed == 0 {
				firstKeyed = e.Seq
				if r.KeyedFrom == 0 {
					r.KeyedFrom = e.Seq
				}
			}
			if e.ComputeMAC(a.Key) != e.Hash {
				return &AuditBreak{Seq: e.Seq, What: "changed", Msg: fmt.Sprintf("entry %d was changed: its content does not match its keyed hash", e.Seq)}
			}
		case mustKey || firstKeyed > 0:
			return &AuditBreak{Seq: e.Seq, What: "unkeyed", Msg: fmt.Sprintf("entry %d is not sealed with the key, but the chain is keyed from entry %d: it was rewritten, or written without the key", e.Seq, r.KeyedFrom)}
		case e.ComputeHash() != e.Hash:
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
		if a.Head != nil && e.Seq == a.Head.Seq {
			if e.Hash != a.Head.Hash {
				return &AuditBreak{Seq: e.Seq, What: "changed", Msg: fmt.Sprintf("entry %d is not the one the head recorded outside the state (%s) names: the chain was rewritten", e.Seq, orUnknown(a.HeadPath))}
			}
			anchored = true
		}
		prevHash, prevSeq = e.Hash, e.Seq
	}
	if headSeq != prevSeq || headHash != prevHash {
		if headSeq > prevSeq {
			return &AuditBreak{Seq: prevSeq + 1, What: "removed", Msg: fmt.Sprintf("entries %d to %d were removed from the end", prevSeq+1, headSeq)}
		}
		return &AuditBreak{Seq: prevSeq, What: "changed", Msg: fmt.Sprintf("the last entry is %d but the log's head records entry %d", prevSeq, headSeq)}
	}
	switch {
	case a.Head != nil && !anchored && a.Head.Seq > 0:
		return &AuditBreak{Seq: prevSeq + 1, What: "removed", Msg: fmt.Sprintf("entries %d to %d were removed from the end: the head recorded outside the state (%s) is entry %d, the chain ends at %d", prevSeq+1, a.Head.Seq, orUnknown(a.HeadPath), a.Head.Seq, prevSeq)}
	case a.Head == nil && firstKeyed > 0:
		return &AuditBreak{Seq: prevSeq, What: "head-missing", Msg: fmt.Sprintf("keyed chain, head missing: no head is recorded outside the state at %s, so a chain cut short cannot be told from a whole one; restore the file (or pass --audit-head)", orUnknown(a.HeadPath))}
	case a.Key == nil && a.Head != nil:
		return &AuditBreak{Seq: a.Head.keyedFrom(), What: "key-missing", Msg: fmt.Sprintf("keyed chain, key missing: a head is recorded at %s but the key file %s is missing; restore it", orUnknown(a.HeadPath), orUnknown(a.KeyPath))}
	}
	return nil
}

func (h *AuditHeadRecord) keyedFrom() int64 {
	if h == nil {
		return 0
	}
	return h.KeyedFrom
}

func orUnknown(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}

// describe says what was checked and what that protects against, so that
// an operator reading `gantry audit verify` knows what "intact" means.
func (r *AuditReport) describe(a AuditAnchor) {
	r.Checked = []string{
		"every entry's hash against its content, and its link to the entry before (no entry changed, removed or reordered)",
		"the chain's end against the head recorded in the state",
	}
	r.Protects = []string{"changes made through the database by mistake, and edits of the state file that do not recompute the hashes"}
	r.Unprotected = []string{}
	if r.Keyed || a.Head != nil {
		from := r.KeyedFrom
		r.Checked = append(r.Checked,
			fmt.Sprintf("the keyed hashes (HMAC-SHA256 under %s) of entries %d on, and that no entry after the first keyed one is unkeyed", orUnknown(a.KeyPath), from),
			fmt.Sprintf("the chain's end against the head recorded outside the state in %s (entry %d)", orUnknown(a.HeadPath), r.AnchorSeq))
		r.Protects = append(r.Protects,
			"someone who can write the state file but not read the key: an edited, removed, reordered or forged entry, a chain cut short and its stored head moved back, and hashes recomputed without the key are all detected")
		if from > 1 {
			r.Protects = append(r.Protects, fmt.Sprintf("entries 1 to %d, written before the key existed, the same way: the first keyed entry seals the hash of the last unkeyed one", from-1))
		}
		r.Unprotected = append(r.Unprotected,
			"someone who holds both the key and the state file, or who can write the head file beside the key: they can rewrite the chain and its head",
			"the newest entry when the server stopped between writing it and recording the head outside the state: removing that one entry is not detected")
	} else {
		r.Unprotected = append(r.Unprotected, "someone who can write the state file: without a key they can recompute every hash and move the stored head back")
	}
}
