package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/digest"
	"github.com/jackc/pgx/v5"
)

// ChunkSize is how much of an artifact one row holds: small enough that
// reading an artifact holds one chunk in memory, large enough that a
// release of tens of megabytes is tens of rows.
const ChunkSize = 1 << 20

// Artifacts is a gantry.ArtifactStore in the store's database, for
// several servers on one store: what one builds or imports, every other
// reads (gantry server --artifacts store).
type Artifacts struct {
	db *DB
	// TempDir holds an artifact being put until its digest is known
	// (default os.TempDir()).
	TempDir string
}

var _ gantry.ArtifactStore = (*Artifacts)(nil)

// Artifacts returns the store's artifact store.
func (db *DB) Artifacts() *Artifacts { return &Artifacts{db: db} }

// Put stores r's bytes and returns their digest. They are spooled to a
// temporary file first, so that the transaction that writes them is short
// and knows the digest; storing bytes already stored (by this server or
// another, even at the same moment) keeps the one copy.
func (a *Artifacts) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(a.TempDir, "gantry-artifact-*")
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	sum := digest.Of(h)
	if ok, err := a.Has(ctx, sum); err != nil || ok {
		return sum, size, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	chunks := int((size + ChunkSize - 1) / ChunkSize)
	buf := make([]byte, min(size, ChunkSize))
	// Not db.update: bytes stored under their own digest undo nothing a
	// newer leader did, and a fenced write would hold the lease row FOR
	// SHARE while every chunk is written, keeping the leader from renewing
	// its lease (and any other server from taking it) meanwhile.
	err = pgx.BeginTxFunc(ctx, a.db.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// The row first: a concurrent Put of the same bytes waits on it
		// and then finds it there, so the chunks are written once.
		tag, err := tx.Exec(ctx, `INSERT INTO artifacts (digest, size, chunks, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (digest) DO NOTHING`, sum, size, chunks, a.db.now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		for seq := range chunks {
			n, err := io.ReadFull(tmp, buf)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO artifact_chunks (digest, seq, data) VALUES ($1, $2, $3)`, sum, seq, buf[:n]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", 0, internal("store artifact", err)
	}
	return sum, size, nil
}

// Has reports whether the digest is stored.
func (a *Artifacts) Has(ctx context.Context, d string) (bool, error) {
	if _, err := digest.Parse(d); err != nil {
		return false, err
	}
	var n int
	err := a.db.pool.QueryRow(ctx, `SELECT count(*) FROM artifacts WHERE digest = $1`, d).Scan(&n)
	if err != nil {
		return false, internal("find artifact", err)
	}
	return n > 0, nil
}

// Open returns the artifact's bytes, read one chunk at a time and verified
// against the digest at the end.
func (a *Artifacts) Open(ctx context.Context, d string) (io.ReadCloser, error) {
	if _, err := digest.Parse(d); err != nil {
		return nil, err
	}
	var chunks int
	err := a.db.pool.QueryRow(ctx, `SELECT chunks FROM artifacts WHERE digest = $1`, d).Scan(&chunks)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "artifact %s not found", d)
	} else if err != nil {
		return nil, internal("open artifact", err)
	}
	return digest.Verifying(&chunkReader{ctx: ctx, a: a, digest: d, chunks: chunks}, d), nil
}

// chunkReader reads an artifact's chunks in order.
type chunkReader struct {
	ctx    context.Context
	a      *Artifacts
	digest string
	chunks int
	next   int
	buf    []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.next == c.chunks {
			return 0, io.EOF
		}
		err := c.a.db.pool.QueryRow(c.ctx, `SELECT data FROM artifact_chunks WHERE digest = $1 AND seq = $2`, c.digest, c.next).Scan(&c.buf)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, gantry.Errorf(gantry.EINTERNAL, "artifact %s is corrupt: chunk %d of %d is missing", c.digest, c.next+1, c.chunks)
		} else if err != nil {
			return 0, internal("read artifact", err)
		}
		c.next++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (c *chunkReader) Close() error { return nil }
