-- 0001: the first schema of Gantry's state on PostgreSQL, the same tables
-- as sqlite/ so that one store can be copied into the other row by row.
--
-- Times are TEXT in a fixed-width RFC 3339 form (nine fraction digits, UTC,
-- "Z"), not timestamptz: timestamptz keeps microseconds, and the store must
-- give back the nanoseconds it was given. NULL means the zero time. Every
-- column that is ordered or compared by range is COLLATE "C" so that order
-- is byte order whatever the database's locale: fixed-width times then sort
-- as instants, and a release ID prefix is an index range.

CREATE TABLE apps (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	repo       TEXT NOT NULL,
	created_at TEXT COLLATE "C" NOT NULL
);

-- seq is the insertion order that breaks ties between releases created at
-- the same instant (SQLite's rowid).
CREATE TABLE releases (
	id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	seq             BIGINT GENERATED ALWAYS AS IDENTITY,
	app             TEXT COLLATE "C" NOT NULL REFERENCES apps (name),
	version         TEXT NOT NULL,
	commit_sha      TEXT NOT NULL,
	ref             TEXT NOT NULL,
	artifacts       JSONB NOT NULL, -- service name -> gantry.Artifact
	manifest        BYTEA NOT NULL,
	manifest_digest TEXT NOT NULL,
	builder         TEXT NOT NULL,
	created_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX releases_app ON releases (app, created_at, seq);
CREATE INDEX releases_app_version ON releases (app, version, created_at, seq);
CREATE INDEX releases_commit ON releases (commit_sha, created_at, seq);

-- An environment is one JSON document (the whole gantry.Environment), keyed
-- by columns so that lookups need no JSON.
CREATE TABLE environments (
	app        TEXT COLLATE "C" NOT NULL REFERENCES apps (name),
	name       TEXT COLLATE "C" NOT NULL,
	doc        JSONB NOT NULL,
	updated_at TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (app, name)
);

-- Deployments have no foreign key to environments: history outlives a
-- deleted or renamed environment. An identity's sequence never hands out a
-- number twice, even when the inserting transaction rolls back, so an ID is
-- never reused. Each index ends in id so that a filtered list newest first
-- is read backwards from the index and LIMIT stops the scan.
CREATE TABLE deployments (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app          TEXT COLLATE "C" NOT NULL REFERENCES apps (name),
	env          TEXT COLLATE "C" NOT NULL,
	kind         TEXT NOT NULL,
	release_id   TEXT NOT NULL,
	version      TEXT NOT NULL,
	from_release TEXT NOT NULL,
	from_env     TEXT NOT NULL,
	slot         TEXT NOT NULL,
	strategy     TEXT NOT NULL,
	actor        TEXT NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,
	error        TEXT NOT NULL,
	created_at   TEXT COLLATE "C" NOT NULL,
	finished_at  TEXT COLLATE "C",
	-- An ordered rollout's typed resume state, so that `continue` never
	-- parses the journal's text.
	pause_after  INTEGER,
	only_service TEXT NOT NULL DEFAULT '',
	group_done   INTEGER
);
CREATE INDEX deployments_app ON deployments (app, id);
CREATE INDEX deployments_app_env ON deployments (app, env, id);
CREATE INDEX deployments_app_env_state ON deployments (app, env, state, id);
CREATE INDEX deployments_env ON deployments (env, id);
CREATE INDEX deployments_state ON deployments (state, id);

CREATE TABLE steps (
	deployment_id BIGINT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	name          TEXT NOT NULL,
	state         TEXT NOT NULL,
	detail        TEXT NOT NULL,
	started_at    TEXT COLLATE "C" NOT NULL,
	ended_at      TEXT COLLATE "C",
	PRIMARY KEY (deployment_id, seq)
);

-- At most one row per environment; an expired row is replaced in place.
CREATE TABLE locks (
	app           TEXT COLLATE "C" NOT NULL REFERENCES apps (name),
	env           TEXT COLLATE "C" NOT NULL,
	holder        TEXT NOT NULL,
	operation     TEXT NOT NULL,
	reason        TEXT NOT NULL,
	deployment_id BIGINT NOT NULL, -- 0 when the lock is not a deployment's
	since         TEXT COLLATE "C" NOT NULL,
	expires       TEXT COLLATE "C", -- NULL: no TTL
	PRIMARY KEY (app, env)
);

CREATE TABLE approvals (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app         TEXT COLLATE "C" NOT NULL,
	env         TEXT COLLATE "C" NOT NULL,
	release_id  TEXT COLLATE "C" NOT NULL,
	fingerprint TEXT NOT NULL,
	approver    TEXT NOT NULL,
	role        TEXT NOT NULL,
	comment     TEXT NOT NULL,
	created_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX approvals_release ON approvals (app, env, release_id, id);
