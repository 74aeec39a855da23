package gantry

import (
	"regexp"
	"slices"
	"strings"
	"sync"
)

// An environment's variables may be derived per environment: a value may
// hold placeholders, filled for each environment when its instances, its
// migration command and its hooks get their variables. A clone of prod
// then links to itself, not to prod:
//
//	vars: {BASE_URL: "https://{host}/"}
//
// A placeholder is a lowercase name in braces; the manifest refuses one
// that is not below. Anything else in braces (JSON, say) is left as is.
// (Compiled on first use: package initialisation runs in every command.)
var varPlaceholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{([a-z_]+)\}`) })

// VarPlaceholders are the placeholders a variable's value may hold: the
// app's name, the environment's name, and the environment's first host
// (its first without a wildcard).
var VarPlaceholders = []string{"app", "env", "host"}

// UnknownPlaceholders lists the placeholders of v that are not
// VarPlaceholders.
func UnknownPlaceholders(v string) []string {
	var out []string
	for _, m := range varPlaceholder().FindAllStringSubmatch(v, -1) {
		if !slices.Contains(VarPlaceholders, m[1]) && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// ExpandedVars returns the environment's variables with their
// placeholders filled for it.
func (e *Environment) ExpandedVars() map[string]string {
	if len(e.Spec.Vars) == 0 {
		return nil
	}
	values := map[string]string{"app": e.App, "env": e.Name, "host": FirstHost(e.Spec.Hosts)}
	out := make(map[string]string, len(e.Spec.Vars))
	for k, v := range e.Spec.Vars {
		out[k] = varPlaceholder().ReplaceAllStringFunc(v, func(p string) string {
			if val, ok := values[strings.Trim(p, "{}")]; ok {
				return val
			}
			return p
		})
	}
	return out
}

// FirstHost is the first of hosts that is not a wildcard, or "".
func FirstHost(hosts []string) string {
	for _, h := range hosts {
		if !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return ""
}
