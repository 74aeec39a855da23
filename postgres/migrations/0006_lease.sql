-- 0006: the leader lease with its fencing token, the route table that
-- following routers serve, and what each router reports.
--
-- The lease's expiry is a timestamptz judged by the database's clock
-- (clock_timestamp()), the one clock every server shares.
CREATE TABLE lease (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	holder  TEXT NOT NULL,
	addr    TEXT NOT NULL,
	epoch   BIGINT NOT NULL,
	expires TIMESTAMPTZ NOT NULL
);

CREATE TABLE route_table (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL,
	doc     TEXT NOT NULL
);

CREATE TABLE routers (
	name    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	url     TEXT NOT NULL,
	applied BIGINT NOT NULL,
	failed  BIGINT NOT NULL,
	error   TEXT NOT NULL,
	routes  TEXT NOT NULL, -- JSON: the router's []RouteStatus
	seen    TEXT COLLATE "C" NOT NULL
);
