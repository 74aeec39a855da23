ALTER TABLE users ADD COLUMN full_name text;
CREATE FUNCTION users_sync_full_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.full_name IS NULL THEN NEW.full_name := NEW.name; END IF;
	IF NEW.name IS NULL THEN NEW.name := NEW.full_name; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER users_sync_full_name BEFORE INSERT OR UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION users_sync_full_name();
ALTER TABLE users ALTER COLUMN name DROP NOT NULL;
UPDATE users SET full_name = name WHERE full_name IS NULL;
