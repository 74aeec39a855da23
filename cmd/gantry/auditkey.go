package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/atomicfile"
)

// auditAnchor keeps what lets `gantry audit verify` catch someone who can
// write the state file: the chain's key, and the chain's head recorded after
// each append. Both live outside --data (beside the secrets key by default):
// without the key nobody can recompute a keyed hash, and the recorded head
// cannot be moved back by cutting the chain short in the state.
type auditAnchor struct {
	db       gantry.KeyedAuditLog
	keyPath  string
	headPath string
	key      []byte // nil: missing (the chain's key file was not found)
	logger   *slog.Logger

	mu sync.Mutex
	// head is the last head recorded; record is false when appends must
	// not move it (the key or the head file went missing on a keyed
	// chain: verify reports that until an operator restores them).
	head   *gantry.AuditHeadRecord
	record bool
}

var _ gantry.AuditChecker = (*auditAnchor)(nil)

// defaultAuditHead names the head file of the state: one per state (the
// directory that holds SQLite's file, or the PostgreSQL database and
// schema), in a directory beside the key, so that several servers of one
// user (each with its own state) share a key but not a head.
func defaultAuditHead(keyPath, storeURL, dataDir string) (string, error) {
	id, err := stateID(storeURL, dataDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(filepath.Dir(keyPath), "audit-heads", hex.EncodeToString(sum[:8])+".json"), nil
}

// openAuditAnchor loads the key and the head, creating the key (0600) on
// the first start, and seals the store's later appends with it. A key
// file is created only where no keyed chain exists yet: over a keyed chain
// a missing key is reported by verify, never replaced by a new one.
func openAuditAnchor(ctx context.Context, db gantry.KeyedAuditLog, keyPath, headPath, dataDir string, logger *slog.Logger) (*auditAnchor, error) {
	for _, p := range []*string{&keyPath, &headPath} {
		abs, err := outsideData(*p, dataDir)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	a := &auditAnchor{db: db, keyPath: keyPath, headPath: headPath, logger: logger}
	head, err := a.readHead()
	if err != nil {
		return nil, err
	}
	keyed, err := db.AuditKeyed(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) && head == nil && !keyed {
		raw, err = createKeyFile(keyPath)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		logger.Error("audit chain: keyed chain, key missing; appends are unkeyed and verify fails until the key is restored", "key", keyPath)
	case err != nil:
		return nil, fmt.Errorf("audit key %s: %w", keyPath, err)
	default:
		if a.key, err = decodeAuditKey(raw, keyPath); err != nil {
			return nil, err
		}
	}
	seq, hash, err := db.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case a.key == nil:
	case head == nil && !keyed:
		// The key is new: anchor the unkeyed chain as it is now, so that
		// even its old entries cannot be cut off from now on.
		head = &gantry.AuditHeadRecord{Seq: seq, Hash: hash, KeyedFrom: seq + 1}
		if err := a.writeHead(head); err != nil {
			return nil, err
		}
		a.record = true
	case head == nil:
		logger.Error("audit chain: keyed chain, head missing; verify fails until it is restored", "head", headPath)
	default:
		if head, err = a.catchUp(ctx, head); err != nil {
			return nil, err
		}
		a.record = true
	}
	a.head = head
	db.SealAudit(a.key, a.appended)
	return a, nil
}

// decodeAuditKey reads the key file's content: 64 hex digits.
func decodeAuditKey(raw []byte, path string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, gantry.Errorf(gantry.EINVALID, "audit key %s: want 64 hex digits (a 256-bit key)", path)
	}
	return key, nil
}

// catchUp moves the head over entries that were committed but whose head
// was not recorded (a stop between the two), as long as they are keyed,
// verify under the key and chain on from the recorded head: nothing else
// may move it.
func (a *auditAnchor) catchUp(ctx context.Context, head *gantry.AuditHeadRecord) (*gantry.AuditHeadRecord, error) {
	es, err := a.db.ListAudit(ctx, gantry.AuditFilter{AfterSeq: head.Seq})
	if err != nil {
		return nil, err
	}
	next := *head
	for _, e := range es {
		if e.Seq != next.Seq+1 || e.PrevHash != next.Hash || !e.Keyed() || e.ComputeMAC(a.key) != e.Hash {
			break
		}
		next.Seq, next.Hash = e.Seq, e.Hash
	}
	if next == *head {
		return head, nil
	}
	return &next, a.writeHead(&next)
}

// appended records the head after a committed append. It only moves the
// head on from where it was: an append that does not follow the recorded
// head means the state was cut short or rewritten, and the recorded head
// must stay to say so. An append past the head is no such sign when other
// servers share the PostgreSQL store: the entries between are theirs, and
// the head moves over them as a restart's catch-up does, only as far as
// they are keyed, verify under the key and chain on.
func (a *auditAnchor) appended(e *gantry.AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.record || a.head == nil {
		return
	}
	if e.Seq > a.head.Seq+1 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		next, err := a.catchUp(ctx, a.head)
		cancel()
		if err != nil {
			a.logger.Error("audit chain: record head", "head", a.headPath, "error", err)
			return
		}
		a.head = next
		if a.head.Seq >= e.Seq {
			return
		}
	}
	if e.Seq != a.head.Seq+1 || e.PrevHash != a.head.Hash {
		a.logger.Error("audit chain: an append does not follow the head recorded outside the state; the state was cut short or rewritten, the recorded head stays",
			"seq", e.Seq, "recorded_seq", a.head.Seq, "head", a.headPath)
		return
	}
	next := &gantry.AuditHeadRecord{Seq: e.Seq, Hash: e.Hash, KeyedFrom: a.head.KeyedFrom}
	if err := a.writeHead(next); err != nil {
		a.logger.Error("audit chain: record head", "head", a.headPath, "error", err)
		return
	}
	a.head = next
}

// CheckAudit verifies the chain against the key and the head file as it
// is on disk now. The head is read before the entries: an append in
// between only makes the chain longer than the head, which is allowed.
func (a *auditAnchor) CheckAudit(ctx context.Context) (*gantry.AuditReport, error) {
	head, err := a.readHead()
	if err != nil {
		return nil, err
	}
	es, err := a.db.ListAudit(ctx, gantry.AuditFilter{})
	if err != nil {
		return nil, err
	}
	seq, hash, err := a.db.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	return gantry.CheckAudit(es, seq, hash, gantry.AuditAnchor{Key: a.key, Head: head, KeyPath: a.keyPath, HeadPath: a.headPath}), nil
}

func (a *auditAnchor) readHead() (*gantry.AuditHeadRecord, error) {
	b, err := os.ReadFile(a.headPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("audit head %s: %w", a.headPath, err)
	}
	var h gantry.AuditHeadRecord
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "audit head %s: %v", a.headPath, err)
	}
	return &h, nil
}

// writeHead replaces the head file atomically: a crash leaves the old head
// or the new one, never a torn file that would read as missing.
func (a *auditAnchor) writeHead(h *gantry.AuditHeadRecord) error {
	if err := os.MkdirAll(filepath.Dir(a.headPath), 0o700); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return atomicfile.Write(a.headPath, append(b, '\n'), 0o600)
}

// outsideData returns path made absolute, or an error when it lies inside
// the state directory: a key or head kept with the state protects nothing
// against someone who can write the state.
func outsideData(path, dataDir string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(data, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", gantry.Errorf(gantry.EINVALID, "%s is inside the state directory %s: keep the audit key and head apart (--audit-key, --audit-head)", abs, data)
	}
	return abs, nil
}

// createKeyFile writes a new random 256-bit key, 0600 in a 0700 directory.
// The key is written whole to a temporary file and then linked into place,
// so a server starting at the same moment (tests start many) reads either
// no key or a whole one, never a half-written file; when another created
// it first, that key is the one.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	enc := []byte(hex.EncodeToString(key) + "\n")
	f, err := os.CreateTemp(dir, ".audit-key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Write(enc); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return os.ReadFile(path)
	} else if err != nil {
		return nil, err
	}
	return enc, nil
}
