package postgres

import (
	"bytes"
	"context"
	"io"
	"testing"

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
