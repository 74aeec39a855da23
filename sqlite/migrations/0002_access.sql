-- 0002: access control, the audit trail and stored secrets.

-- Only the SHA-256 of a token's secret is stored; the secret is shown once.
CREATE TABLE tokens (
	name       TEXT NOT NULL PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	envs       TEXT NOT NULL, -- JSON array; [] means every environment
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL
) STRICT;

-- The audit trail is append-only: every entry carries the hash of the one
-- before it. The triggers stop accidents through this database connection;
-- the hash chain is what detects a deliberate edit of the file.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	time      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	operation TEXT NOT NULL,
	app       TEXT NOT NULL,
	env       TEXT NOT NULL,
	release   TEXT NOT NULL,
	result    TEXT NOT NULL,
	code      TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
) STRICT;
CREATE INDEX audit_env ON audit (app, env);
CREATE INDEX audit_time ON audit (time);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- The newest entry, kept apart so that removing it from the end is detected.
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
) STRICT;

-- Secret values sealed with AES-GCM by the server; the key is not in the state.
CREATE TABLE secrets (
	app        TEXT NOT NULL,
	env        TEXT NOT NULL,
	name       TEXT NOT NULL,
	sealed     BLOB NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (app, env, name)
) STRICT, WITHOUT ROWID;
