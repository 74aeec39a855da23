-- 0006: webhook deliveries a server has acted on, remembered for a bound so
-- that a replayed delivery is refused.
CREATE TABLE deliveries (
	source TEXT NOT NULL,
	id     TEXT NOT NULL,
	at     TEXT NOT NULL,
	PRIMARY KEY (source, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_at ON deliveries (at);
