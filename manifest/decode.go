package manifest

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"gopkg.in/yaml.v3"
)

// Decode parses, validates and fills defaults. filename is used in error
// messages only. Bad input gives an *Error listing every problem; its chain
// holds a *gantry.Error with code EINVALID. Decode keeps no state: it is
// safe to call from many goroutines.
func Decode(filename string, data []byte) (*gantry.Manifest, error) {
	m, problems := decode(filename, data)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return m, nil
}

// Check validates a manifest and returns its problems, nil when there are none.
func Check(filename string, data []byte) []Problem {
	_, problems := decode(filename, data)
	return problems
}

func decode(filename string, data []byte) (*gantry.Manifest, []Problem) {
	d := &decoder{file: filename}
	root := d.parse(data)
	if root == nil {
		return nil, d.problems
	}
	m := d.manifest(root)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, truncate(d.problems)
	}
	return m, nil
}

// maxProblems bounds the list: past it, more lines help nobody, and the list
// travels in API responses.
const maxProblems = 50

func truncate(ps []Problem) []Problem {
	if len(ps) <= maxProblems {
		return ps
	}
	last := ps[maxProblems-1]
	more := Problem{File: last.File, Line: last.Line, Column: last.Column,
		Message: fmt.Sprintf("%d more problems not shown", len(ps)-maxProblems)}
	return append(ps[:maxProblems:maxProblems], more)
}

var varNamePattern = lazyre.New(`^[A-Z_][A-Z0-9_]*$`)

// checkName reports a bad app, service, environment or namespace name, by
// the one rule of gantry.ValidName.
func (d *decoder) checkName(n *yaml.Node, path, what, s string) bool {
	if err := gantry.ValidName(what, s); err != nil {
		d.addf(n, path, "%s", gantry.ErrorMessage(err))
		return false
	}
	return true
}

func (d *decoder) manifest(root *yaml.Node) *gantry.Manifest {
	m := &gantry.Manifest{Version: gantry.VersionScheme{Scheme: versionSchemes[0]}}
	if root.Kind != yaml.MappingNode {
		d.addf(root, "", "want a mapping at the top of the manifest, got %s", describe(root))
		return nil
	}
	fs := d.mapping(root, "", "")
	if f, ok := d.require(fs, root, "", "app"); ok {
		if s, ok := d.str(f.val, "app"); ok && d.checkName(f.val, "app", "app", s) {
			m.App = s
		}
	}
	if f, ok := fs["version"]; ok {
		vs := d.mapping(f.val, "version", "version")
		if v, ok := vs["scheme"]; ok {
			if s, ok := d.oneOf(v.val, "version.scheme", versionSchemes); ok {
				m.Version.Scheme = s
			}
		}
	}
	if f, ok := d.require(fs, root, "", "services"); ok {
		m.Services = d.services(f.val, "services")
	}
	if f, ok := fs["verify"]; ok {
		m.Verify = d.verify(f.val, "verify")
	}
	if f, ok := fs["database"]; ok {
		m.Database = d.database(f.val, "database")
	}
	if f, ok := fs["hooks"]; ok {
		m.Hooks = d.hooks(f.val, "hooks")
	}
	if f, ok := d.require(fs, root, "", "environments"); ok {
		m.Environments = d.environments(f.val, "environments", m.App)
	}
	if f, ok := fs["notify"]; ok {
		m.Notify = d.notify(f.val, "notify", m.Environments)
	}
	if f, ok := fs["previews"]; ok {
		m.Previews = d.previews(f.val, "previews", m)
	}
	if f, ok := fs["triggers"]; ok {
		m.Triggers = d.triggers(f.val, "triggers", m)
	}
	return m
}

func (d *decoder) verify(n *yaml.Node, path string) []gantry.VerifyCheck {
	var out []gantry.VerifyCheck
	for i, item := range d.list(n, path) {
		p := index(path, i)
		fs := d.mapping(item, p, "verify[]")
		var c gantry.VerifyCheck
		h, hasHTTP := fs["http"]
		cmd, hasCmd := fs["command"]
		switch {
		case hasHTTP && hasCmd:
			d.addf(cmd.key, p, "a check is either http or command, not both")
			continue
		case hasHTTP:
			c.HTTP = d.httpCheck(h.val, join(p, "http"))
		case hasCmd:
			c.Command, _ = d.nonEmpty(cmd.val, join(p, "command"))
		default:
			if !isNull(item) && item.Kind == yaml.MappingNode {
				d.addf(item, p, "a check needs http or command")
			} else if isNull(item) {
				d.addf(item, p, "want a mapping with http or command, got nothing")
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) httpCheck(n *yaml.Node, path string) *gantry.HTTPCheck {
	c := &gantry.HTTPCheck{Status: defaultCheckStatus}
	fs := d.mapping(n, path, "verify[].http")
	if f, ok := d.require(fs, n, path, "path"); ok {
		c.Path, _ = d.urlPath(f.val, join(path, "path"))
	}
	if f, ok := fs["status"]; ok {
		c.Status, _ = d.integer(f.val, join(path, "status"), 100, 599)
	}
	if f, ok := fs["contains"]; ok {
		c.Contains, _ = d.str(f.val, join(path, "contains"))
	}
	return c
}

// urlPath reads an absolute URL path such as /up.
func (d *decoder) urlPath(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t\r\n#") {
		d.addf(resolve(n), path, "invalid path %q: want a URL path starting with /", clip(s))
		return "", false
	}
	return s, true
}

func (d *decoder) database(n *yaml.Node, path string) *gantry.DatabaseSpec {
	db := &gantry.DatabaseSpec{}
	fs := d.mapping(n, path, "database")
	if f, ok := d.require(fs, n, path, "engine"); ok {
		db.Engine, _ = d.oneOf(f.val, join(path, "engine"), databaseEngines)
	}
	// Either Gantry applies the app's migrations (pgroll, sql), or the app
	// does (its own command, or at start). A database with no migrations
	// key is the app's own: it may change the schema as it starts, so it
	// is deployed as migrate_on_start is (snapshot, fingerprints, requests
	// held), never as a database that does not change.
	mos, explicit := fs["migrate_on_start"]
	if explicit {
		var valid bool
		// A value that is no boolean is reported once, as such.
		db.MigrateOnStart, valid = d.boolean(mos.val, join(path, "migrate_on_start"))
		explicit = valid
	}
	f, ok := fs["migrations"]
	switch {
	case ok:
		d.migrations(f.val, join(path, "migrations"), db)
	case explicit && !db.MigrateOnStart:
		d.addf(mos.val, join(path, "migrate_on_start"), "false needs migrations: without them the app owns its schema and may change it as it starts; say how it changes (migrations with engine pgroll, sql or command), or remove migrate_on_start")
	default:
		db.MigrateOnStart = true
	}
	return db
}

// migrations reads database.migrations: Gantry's engines read a directory;
// the command engine runs the app's own command instead.
func (d *decoder) migrations(n *yaml.Node, p string, db *gantry.DatabaseSpec) {
	ms := d.mapping(n, p, "database.migrations")
	if e, ok := d.require(ms, n, p, "engine"); ok {
		db.Migrations.Engine, _ = d.oneOf(e.val, join(p, "engine"), migrationEngines)
	}
	if c, ok := ms["compatible"]; ok {
		db.Migrations.Compatible, _ = d.boolean(c.val, join(p, "compatible"))
	}
	if db.Migrations.Engine == gantry.MigrationEngineCommand {
		if dir, ok := ms["dir"]; ok {
			d.addf(dir.key, join(p, "dir"), "not with engine command: the app's command finds its own migrations; remove dir")
		}
		if db.MigrateOnStart {
			d.addf(n, p, "engine command and migrate_on_start: true both migrate the schema; keep one")
		}
		if r, ok := d.require(ms, n, p, "run"); ok {
			db.Migrations.Run, _ = d.nonEmpty(r.val, join(p, "run"))
		}
		return
	}
	if r, ok := ms["run"]; ok {
		d.addf(r.key, join(p, "run"), "only with engine command: pgroll and sql migrations are files under dir")
	}
	if db.MigrateOnStart {
		d.addf(n, p, "migrate_on_start: true means the app migrates itself; remove migrations, or migrate_on_start")
	}
	db.Migrations.Dir = "db/migrations"
	if dir, ok := ms["dir"]; ok {
		db.Migrations.Dir, _ = d.relPath(dir.val, join(p, "dir"))
	}
}

// relPath reads a path inside the repository: relative, and not escaping it.
func (d *decoder) relPath(n *yaml.Node, path string) (string, bool) {
	s, ok := d.nonEmpty(n, path)
	if !ok {
		return "", false
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") || s == ".." || strings.HasPrefix(s, "../") || strings.Contains(s, "/../") || strings.HasSuffix(s, "/..") || strings.ContainsRune(s, 0) {
		d.addf(resolve(n), path, "invalid path %q: want a path relative to the repository root, inside it", clip(s))
		return "", false
	}
	return s, true
}

func (d *decoder) hooks(n *yaml.Node, path string) map[string][]gantry.Hook {
	out := map[string][]gantry.Hook{}
	for phase, f := range d.mapping(n, path, "hooks") {
		p := join(path, phase)
		var hs []gantry.Hook
		for i, item := range d.list(f.val, p) {
			if h, ok := d.hook(item, index(p, i)); ok {
				hs = append(hs, h)
			}
		}
		if len(hs) > 0 {
			out[phase] = hs
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) hook(n *yaml.Node, path string) (gantry.Hook, bool) {
	var h gantry.Hook
	fs := d.mapping(n, path, "hooks.<phase>[]")
	cmd, hasCmd := fs["command"]
	wh, hasWebhook := fs["webhook"]
	switch {
	case hasCmd && hasWebhook:
		d.addf(wh.key, path, "a hook is either command or webhook, not both")
		return h, false
	case hasCmd:
		s, ok := d.nonEmpty(cmd.val, join(path, "command"))
		h.Command = s
		return h, ok
	case hasWebhook:
		p := join(path, "webhook")
		w := &gantry.Webhook{Method: webhookMethods[0]}
		ws := d.mapping(wh.val, p, "hooks.<phase>[].webhook")
		if u, ok := d.require(ws, wh.val, p, "url"); ok {
			w.URL, _ = d.webhookURL(u.val, join(p, "url"))
		}
		if m, ok := ws["method"]; ok {
			w.Method, _ = d.oneOf(m.val, join(p, "method"), webhookMethods)
		}
		h.Webhook = w
		return h, true
	}
	if isNull(n) || n.Kind == yaml.MappingNode {
		d.addf(n, path, "a hook needs command or webhook")
	}
	return h, false
}

func (d *decoder) webhookURL(n *yaml.Node, path string) (string, bool) {
	s, ok := d.nonEmpty(n, path)
	if !ok {
		return "", false
	}
	if placeholderOnly(s) {
		return s, true
	}
	u, err := url.Parse(withoutPlaceholders(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.addf(resolve(n), path, "invalid URL %q: want http:// or https:// and a host", clip(s))
		return "", false
	}
	return s, true
}

// sortedNames returns a map's keys in order, for deterministic walks.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
