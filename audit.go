package gantry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
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
// that a changed, removed or reordered entry breaks the chain. A keyed
// entry's hash is an HMAC under a key kept outside the state (see
// AuditAnchor): without the key nobody can recompute it, so an edit of the
// state file cannot be covered up by recomputing the chain.
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

// AuditMACPrefix starts the hash of a keyed entry, so that an entry says
// how it is to be checked; unkeyed hashes (entries written before the key
// existed) are bare hex.
const AuditMACPrefix = "hmac-sha256:"

// ComputeHash returns the unkeyed hash of e's content and PrevHash. The
// encoding is canonical: every field length-prefixed in a fixed order,
// times in UTC with nanoseconds, so no two different entries encode the
// same. Seq is left out on purpose: it is the position, checked by the
// chain itself.
func (e *AuditEntry) ComputeHash() string {
	return hex.EncodeToString(e.digest(sha256.New(), "gantry-audit-v1"))
}

// ComputeMAC returns the keyed hash of the same encoding, under a tag of
// its own so that it can never equal an unkeyed one.
func (e *AuditEntry) ComputeMAC(key []byte) string {
	return AuditMACPrefix + hex.EncodeToString(e.digest(hmac.New(sha256.New, key), "gantry-audit-v2-hmac"))
}

// Seal sets e.Hash: keyed when key is set, else unkeyed.
func (e *AuditEntry) Seal(key []byte) {
	if len(key) > 0 {
		e.Hash = e.ComputeMAC(key)
	} else {
		e.Hash = e.ComputeHash()
	}
}

// Keyed says whether e's hash claims to be an HMAC.
func (e *AuditEntry) Keyed() bool { return strings.HasPrefix(e.Hash, AuditMACPrefix) }

func (e *AuditEntry) digest(h hash.Hash, tag string) []byte {
	for _, f := range []string{
		tag, e.PrevHash, e.Time.UTC().Format(time.RFC3339Nano),
		e.Actor, e.Operation, e.App, e.Env, e.Release, e.Result, e.Code,
	} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return h.Sum(nil)
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

// AuditLog is the append-only audit trail. Implementations: sqlite, postgres.
type AuditLog interface {
	// AppendAudit sets e.Seq, e.PrevHash and e.Hash and stores e, in one
	// transaction so that concurrent appends chain correctly. The hash is
	// keyed when the implementation was given the chain's key.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns entries oldest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
	// AuditHead returns the last entry's seq and hash (0 and "" when empty),
	// kept apart from the entries so that removing the newest is detected.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
}

// KeyedAuditLog is an AuditLog whose chain can be sealed with a key kept
// outside the state, as the server does (see AuditAnchor). Implementations:
// sqlite, postgres.
type KeyedAuditLog interface {
	AuditLog
	// SealAudit makes later appends keyed with key (nil: unkeyed) and calls
	// appended with each entry after its commit, in chain order, so that
	// the head can be recorded outside the state.
	SealAudit(key []byte, appended func(*AuditEntry))
	// AuditKeyed says whether any entry is sealed with a key, so that a
	// server that finds no key file does not start a new key over a keyed
	// chain.
	AuditKeyed(ctx context.Context) (bool, error)
}
