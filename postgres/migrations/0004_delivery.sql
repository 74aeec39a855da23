-- 0004: delivery metrics. A release records when its commit was made (lead
-- time starts there), and a period of an app's deployments is read off an
-- index by creation time, so figures over 30 days cost what 30 days hold.
ALTER TABLE releases ADD COLUMN committed_at TEXT COLLATE "C";
CREATE INDEX deployments_app_time ON deployments (app, created_at, id);
CREATE INDEX deployments_app_env_time ON deployments (app, env, created_at, id);
