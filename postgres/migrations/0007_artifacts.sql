-- 0007: artifacts kept in the store (gantry server --artifacts store), so
-- that every server on it reads what any of them built or imported. An
-- artifact is its chunks, in order; its row is written with them, in one
-- transaction, so a reader finds an artifact whole or not at all.
CREATE TABLE artifacts (
	digest     TEXT NOT NULL PRIMARY KEY,
	size       BIGINT NOT NULL,
	chunks     INTEGER NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE artifact_chunks (
	digest TEXT NOT NULL REFERENCES artifacts (digest) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	data   BYTEA NOT NULL,
	PRIMARY KEY (digest, seq)
);
