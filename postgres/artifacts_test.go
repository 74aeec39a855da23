package postgres

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/storetest"
)

// TestArtifacts runs the artifact stores' shared suite on the store's
// database, and checks that a second server on the same database reads
// what the first put.
func TestArtifacts(t *testing.T) {
	url := mustServer(t)
	db := MustOpen(t, url, "artifacts")
	storetest.RunArtifacts(t, db.Artifacts(), func(t *testing.T, digest string) {
		_, err := db.pool.Exec(context.Background(), `UPDATE artifact_chunks SET data = decode(repeat('79', length(data)), 'hex') WHERE digest = $1`, digest)
		if err != nil {
			t.Fatal(err)
		}
	})

	data := bytes.Repeat([]byte("shared"), 400_000)
	digest, _, err := db.Artifacts().Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	other := MustOpen(t, url, "artifacts")
	r, err := other.Artifacts().Open(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("another server read %d bytes, %v; want the %d put", len(got), err, len(data))
	}
}

// TestArtifactPutHoldsNoLease: storing an artifact is not a fenced write.
// Bytes stored under their own digest cannot undo another server's work,
// and a fenced Put would hold the lease row FOR SHARE while it writes every
// chunk, keeping the leader from renewing its lease (and any other server
// from taking it over) for as long as a large artifact takes to write.
// Here a renewal holds the lease row: a Put made under the fence must not
// wait for it.
func TestArtifactPutHoldsNoLease(t *testing.T) {
	db := MustOpen(t, mustServer(t), "artifacts_lease")
	ctx := t.Context()
	l, err := db.AcquireLease(ctx, "a", "http://a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	renewal, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer renewal.Rollback(context.Background())
	if _, err := renewal.Exec(ctx, `SELECT 1 FROM lease WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(gantry.WithFence(ctx, l.Epoch), 3*time.Second)
	defer cancel()
	if _, _, err := db.Artifacts().Put(pctx, bytes.NewReader(bytes.Repeat([]byte("lease"), 300_000))); err != nil {
		t.Fatalf("Put while the lease row is being renewed: %v", err)
	}
}
