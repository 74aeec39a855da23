-- 0002: access tokens and stored secrets. (The audit trail is not here yet:
-- its chain format is being changed; it comes in a migration of its own.)

-- Only the SHA-256 of a token's secret is stored; the secret is shown once.
CREATE TABLE tokens (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	envs       JSONB NOT NULL, -- array; [] means every environment
	created_by TEXT NOT NULL,
	created_at TEXT COLLATE "C" NOT NULL
);

-- Secret values sealed with AES-GCM by the server; the key is not in the state.
CREATE TABLE secrets (
	app        TEXT COLLATE "C" NOT NULL,
	env        TEXT COLLATE "C" NOT NULL,
	name       TEXT COLLATE "C" NOT NULL,
	sealed     BYTEA NOT NULL,
	updated_at TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (app, env, name)
);
