package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/postgres"
)

// sameRows compares the rows read from the source with those read back
// from the destination, in order: the same count and every value equal.
func sameRows(t copyTable, want, got [][]any) error {
	if len(got) != len(want) {
		return fmt.Errorf("table %s: %d rows on the destination, %d in the source", t.name, len(got), len(want))
	}
	for i := range want {
		for j, col := range t.columns {
			w, err := normValue(want[i][j], t.json[col])
			if err != nil {
				return fmt.Errorf("table %s row %d column %s: source: %w", t.name, i+1, col, err)
			}
			g, err := normValue(got[i][j], t.json[col])
			if err != nil {
				return fmt.Errorf("table %s row %d column %s: destination: %w", t.name, i+1, col, err)
			}
			if !bytes.Equal(w, g) {
				return fmt.Errorf("table %s row %d column %s differs: source %.100s, destination %.100s", t.name, i+1, col, w, g)
			}
		}
	}
	return nil
}

// normValue encodes a column value so that the two stores' forms of one
// value compare equal: integers of any width, text as string or bytes, and
// JSON by value (jsonb reorders keys and drops whitespace).
func normValue(v any, isJSON bool) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return []byte("null"), nil
	case int64, int32, int16, int:
		return fmt.Appendf(nil, "i%d", x), nil
	case string:
		v = []byte(x)
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", v)
	}
	if !isJSON {
		return append([]byte("b"), b...), nil
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	out, err := json.Marshal(doc) // map keys sorted
	return append([]byte("j"), out...), err
}

// verifyAudit checks the copied chain on the destination under the same
// key, against the head recorded for the source: it must verify exactly as
// the source would. Then it records that head for the destination, where a
// server started on it looks, so the chain stays anchored after the move.
func (c *storeCopy) verifyAudit(ctx context.Context, dst *postgres.DB, r *CopyReport) error {
	keyPath := c.auditKey
	if keyPath == "" {
		secrets := c.secretsKey
		if secrets == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("audit key: %w (set --audit-key)", err)
			}
			secrets = filepath.Join(home, ".config", "gantry", "secrets.key")
		}
		keyPath = filepath.Join(filepath.Dir(secrets), "audit.key")
	}
	var key []byte
	raw, err := os.ReadFile(keyPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("audit key %s: %w", keyPath, err)
	default:
		if key, err = decodeAuditKey(raw, keyPath); err != nil {
			return err
		}
	}
	srcHeadPath := c.auditHead
	if srcHeadPath == "" {
		if srcHeadPath, err = defaultAuditHead(keyPath, "", c.data); err != nil {
			return err
		}
	}
	head, err := (&auditAnchor{headPath: srcHeadPath}).readHead()
	if err != nil {
		return err
	}
	es, err := dst.ListAudit(ctx, gantry.AuditFilter{})
	if err != nil {
		return err
	}
	seq, hash, err := dst.AuditHead(ctx)
	if err != nil {
		return err
	}
	r.Audit = gantry.CheckAudit(es, seq, hash, gantry.AuditAnchor{Key: key, Head: head, KeyPath: keyPath, HeadPath: srcHeadPath})
	if !r.Audit.OK {
		return gantry.Errorf(gantry.EFAILED, "store copy: the audit chain does not verify on the destination at entry %d (%s): %s", r.Audit.Break.Seq, r.Audit.Break.What, r.Audit.Break.Msg)
	}
	fmt.Fprintf(c.progress, "verified audit chain: %d entries under %s\n", r.Audit.Entries, keyPath)
	if head == nil {
		return nil
	}
	if r.AuditHead = c.destHead; r.AuditHead == "" {
		if r.AuditHead, err = defaultAuditHead(keyPath, c.to, c.data); err != nil {
			return err
		}
	}
	// The destination was empty, so a head file already there belongs to
	// a state that is gone: the copy's head replaces it.
	return (&auditAnchor{headPath: r.AuditHead}).writeHead(head)
}

func printCopyReport(w io.Writer, r *CopyReport) {
	fmt.Fprintf(w, "copied %s to %s in %.1fs\n", r.From, r.To, r.Seconds)
	for _, t := range r.Tables {
		fmt.Fprintf(w, "  %-12s %6d rows, all equal\n", t.Name, t.Rows)
	}
	keyed := "unkeyed"
	if r.Audit.Keyed {
		keyed = fmt.Sprintf("keyed from entry %d", r.Audit.KeyedFrom)
	}
	fmt.Fprintf(w, "audit chain intact on the destination: %d entries, %s\n", r.Audit.Entries, keyed)
	if r.AuditHead != "" {
		fmt.Fprintf(w, "audit head recorded for the destination in %s\n", r.AuditHead)
	}
	if r.Artifacts > 0 {
		fmt.Fprintf(w, "%d artifacts copied into the store: start the servers with --artifacts store\n", r.Artifacts)
	}
	fmt.Fprintf(w, "start the server with --store %s (and the same --data, --secrets-key and --audit-key)\n", r.To)
}
