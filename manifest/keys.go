package manifest

import (
	"slices"
	"strings"
	"sync"
)

// keys is the one list of every key the decoder knows, by the schema path of
// the mapping that holds it. A placeholder in angle brackets stands for a name
// the user chooses, "[]" for an item of a list. The decoder rejects any other
// key, and a test checks that docs/manifest.md describes exactly these keys.
// The map is built on first use: package initialisation runs in every
// gantry command.
var keys = sync.OnceValue(func() map[string][]string {
	return map[string][]string{
		"":        {"app", "version", "services", "verify", "database", "hooks", "notify", "environments", "triggers", "previews"},
		"version": {"scheme"},
		"services.<service>": {"build", "docker", "run", "http", "instances", "health", "stop", "order", "ready_delay", "route",
			"version_file", "requires", "persist"},
		"services.<service>.route": {"hosts", "path"},
		"services.<service>.build": {"command", "artifacts"},
		"services.<service>.docker": {
			"dockerfile", "context", "target", "args",
		},
		"services.<service>.health": {"path", "interval", "timeout", "healthy_after", "status"},
		"services.<service>.stop":   {"signal", "timeout"},
		"verify[]":                  {"http", "command"},
		"verify[].http":             {"path", "status", "contains"},
		"database":                  {"engine", "migrations", "migrate_on_start"},
		"database.migrations":       {"engine", "dir", "run", "compatible"},
		"hooks":                     phases,
		"hooks.<phase>[]":           {"command", "webhook"},
		"hooks.<phase>[].webhook":   {"url", "method"},
		"notify[]":                  {"slack", "webhook", "environments"},
		"triggers[]":                {"on", "branch", "do", "env"},
		"previews":                  {"from", "host", "ttl", "max", "data", "post_copy"},
		"environments.<env>": {
			"hosts", "runtime", "strategy", "keep_warm", "vars", "secrets", "promote_from", "approvals",
			"freeze", "migrations_via_clone", "watch", "hotfix_approvals", "canary",
		},
		"environments.<env>.runtime":          {"driver", "registry", "namespace", "routing", "gateway", "traffic", "images", "storage_class", "persist_size", "copy_image"},
		"environments.<env>.approvals":        {"required", "roles"},
		"environments.<env>.hotfix_approvals": {"required", "roles"},
		"environments.<env>.freeze[]":         {"from", "to", "reason"},
		"environments.<env>.watch":            {"window", "max_error_rate", "max_latency_ratio", "min_requests"},
		"environments.<env>.canary": {
			"steps", "sticky", "match", "min_requests", "max_extensions", "on_inconclusive",
			"latency_ms", "latency_percent", "error_rate",
		},
		"environments.<env>.canary.steps[]": {"weight", "duration", "requests"},
		"environments.<env>.canary.match":   {"header", "cookie", "value"},
	}
})

// keyPaths returns the full path of every key the decoder knows, sorted, in
// the notation of the reference: services.<service>.health.interval.
func keyPaths() []string {
	var out []string
	for parent, ks := range keys() {
		for _, k := range ks {
			if parent == "" {
				out = append(out, k)
			} else {
				out = append(out, parent+"."+k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// phases are the moments around which hooks run.
var phases = []string{
	"before_build", "after_build",
	"before_deploy", "after_deploy",
	"before_switch", "after_switch",
	"before_promote", "after_promote",
	"before_rollback", "after_rollback",
}

// Values of the enumerated keys; the first one is the default where there is one.
var (
	versionSchemes    = []string{"semver", "calver"}
	strategies        = []string{"bluegreen", "restart", "maintenance", "canary"}
	drivers           = []string{"process", "docker", "kubernetes"}
	routings          = []string{"ingress", "route", "httproute", "none"} // gantry.Routing*
	traffics          = []string{"cluster", "router"}                     // gantry.Traffic*
	imageWays         = []string{"registry", "imagestream"}               // gantry.Images*
	databaseEngines   = []string{"postgres"}
	migrationEngines  = []string{"pgroll", "sql", "command"}
	webhookMethods    = []string{"POST", "GET", "PUT", "PATCH", "DELETE"}
	stopSignals       = []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGKILL"}
	reservedVarPrefix = "GANTRY_"
)

// reservedVar reports whether Gantry sets the variable itself, so an app may
// not declare it.
func reservedVar(name string) bool {
	return name == "PORT" || name == "HOST" || strings.HasPrefix(name, reservedVarPrefix)
}
