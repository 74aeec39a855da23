-- 0005: webhook deliveries a server has acted on, remembered for a bound so
-- that a replayed delivery is refused.
CREATE TABLE deliveries (
	source TEXT COLLATE "C" NOT NULL,
	id     TEXT COLLATE "C" NOT NULL,
	at     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (source, id)
);
CREATE INDEX deliveries_at ON deliveries (at);
