-- 0004: an ordered rollout's typed resume state, so that `continue` never
-- parses the journal's text.
ALTER TABLE deployments ADD COLUMN pause_after INTEGER;
ALTER TABLE deployments ADD COLUMN only_service TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN group_done INTEGER;
