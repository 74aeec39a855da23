-- 0001: the first schema of Gantry's state.
--
-- Times are TEXT in a fixed-width RFC 3339 form (nine fraction digits, UTC,
-- "Z") so that they compare correctly as strings; NULL means the zero time.
-- Tables are STRICT so that a wrong type is an error, not a silent coercion.

CREATE TABLE apps (
	name       TEXT NOT NULL PRIMARY KEY,
	repo       TEXT NOT NULL,
	created_at TEXT NOT NULL
) STRICT;

-- Releases keep their rowid: it is the insertion order that breaks ties
-- between releases created at the same instant.
CREATE TABLE releases (
	id              TEXT NOT NULL PRIMARY KEY,
	app             TEXT NOT NULL REFERENCES apps (name),
	version         TEXT NOT NULL,
	commit_sha      TEXT NOT NULL,
	ref             TEXT NOT NULL,
	artifacts       TEXT NOT NULL, -- JSON: service name -> gantry.Artifact
	manifest        BLOB NOT NULL,
	manifest_digest TEXT NOT NULL,
	builder         TEXT NOT NULL,
	created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX releases_app ON releases (app, created_at);
CREATE INDEX releases_app_version ON releases (app, version, created_at);
CREATE INDEX releases_commit ON releases (commit_sha, created_at);

-- An environment is one JSON document (the whole gantry.Environment), keyed
-- by columns so that lookups need no JSON.
CREATE TABLE environments (
	app        TEXT NOT NULL REFERENCES apps (name),
	name       TEXT NOT NULL,
	doc        TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (app, name)
) STRICT, WITHOUT ROWID;

-- Deployments have no foreign key to environments: history outlives a
-- deleted or renamed environment. AUTOINCREMENT so an ID is never reused.
-- Every index below ends, implicitly, in the rowid (id), so a filtered list
-- comes out of the index already in id order and needs no sort.
CREATE TABLE deployments (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	app          TEXT NOT NULL REFERENCES apps (name),
	env          TEXT NOT NULL,
	kind         TEXT NOT NULL,
	release_id   TEXT NOT NULL,
	version      TEXT NOT NULL,
	from_release TEXT NOT NULL,
	from_env     TEXT NOT NULL,
	slot         TEXT NOT NULL,
	strategy     TEXT NOT NULL,
	actor        TEXT NOT NULL,
	state        TEXT NOT NULL,
	error        TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	finished_at  TEXT
) STRICT;
CREATE INDEX deployments_app ON deployments (app);
CREATE INDEX deployments_app_env ON deployments (app, env);
CREATE INDEX deployments_app_env_state ON deployments (app, env, state);
CREATE INDEX deployments_state ON deployments (state);

CREATE TABLE steps (
	deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	name          TEXT NOT NULL,
	state         TEXT NOT NULL,
	detail        TEXT NOT NULL,
	started_at    TEXT NOT NULL,
	ended_at      TEXT,
	PRIMARY KEY (deployment_id, seq)
) STRICT, WITHOUT ROWID;

-- At most one row per environment; an expired row is replaced in place.
CREATE TABLE locks (
	app           TEXT NOT NULL REFERENCES apps (name),
	env           TEXT NOT NULL,
	holder        TEXT NOT NULL,
	operation     TEXT NOT NULL,
	reason        TEXT NOT NULL,
	deployment_id INTEGER NOT NULL, -- 0 when the lock is not a deployment's
	since         TEXT NOT NULL,
	expires       TEXT,               -- NULL: no TTL
	PRIMARY KEY (app, env)
) STRICT, WITHOUT ROWID;
