-- 0003: approvals of releases for environments.
CREATE TABLE approvals (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	app         TEXT NOT NULL,
	env         TEXT NOT NULL,
	release_id  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	approver    TEXT NOT NULL,
	role        TEXT NOT NULL,
	comment     TEXT NOT NULL,
	created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX approvals_release ON approvals (app, env, release_id);
