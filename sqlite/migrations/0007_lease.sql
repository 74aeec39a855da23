-- 0007: the leader lease with its fencing token, the route table that
-- following routers serve, and what each router reports. On SQLite one
-- server uses the store, so it always holds the lease; the tables are the
-- same as on PostgreSQL so the two stores behave alike.
CREATE TABLE lease (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	holder  TEXT NOT NULL,
	addr    TEXT NOT NULL,
	epoch   INTEGER NOT NULL,
	expires TEXT NOT NULL
);

CREATE TABLE route_table (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	doc     TEXT NOT NULL
);

CREATE TABLE routers (
	name    TEXT NOT NULL PRIMARY KEY,
	url     TEXT NOT NULL,
	applied INTEGER NOT NULL,
	failed  INTEGER NOT NULL,
	error   TEXT NOT NULL,
	routes  TEXT NOT NULL, -- JSON: the router's []RouteStatus
	seen    TEXT NOT NULL
);
