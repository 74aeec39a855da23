-- 0003: the audit trail, the same rows as sqlite/'s so that a chain can be
-- copied entry by entry and verified with the same key.
--
-- Append-only: the triggers stop accidents through Gantry's own sessions
-- (and anyone who does not first drop them); the hash chain, keyed outside
-- the state, is what detects a deliberate edit.
CREATE TABLE audit (
	seq       BIGINT NOT NULL PRIMARY KEY,
	time      TEXT COLLATE "C" NOT NULL,
	actor     TEXT NOT NULL,
	operation TEXT NOT NULL,
	app       TEXT COLLATE "C" NOT NULL,
	env       TEXT COLLATE "C" NOT NULL,
	release   TEXT NOT NULL,
	result    TEXT NOT NULL,
	code      TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE INDEX audit_env ON audit (app, env, seq);
CREATE INDEX audit_time ON audit (time);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The newest entry, kept apart so that removing it from the end is detected.
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash TEXT NOT NULL
);
