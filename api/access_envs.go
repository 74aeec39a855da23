package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

// envField is a field of a route's JSON request body that names an
// environment the operation reads or changes (a clone's destination, a
// rename's new name), and the permission the caller needs there.
type envField struct {
	name string
	perm string
}

// envUse is one environment an operation touches and the permission it
// needs on it.
type envUse struct {
	env, perm string
	// field is the body field that names env; empty for the path's.
	field string
}

// touchedEnvs lists the environments r touches through rt: the one of its
// path with the route's permission, then each one its body names. Checking
// only the path would let a grant for test rename test onto prod or clone
// it anywhere (invariant 11).
//
// The body is read the way the handler will read it (its first JSON value;
// field names match case-insensitively, as encoding/json matches them to
// struct fields), every value a field could take is listed, and the body
// is put back for the handler. A body that cannot be read is refused here
// rather than let through unchecked.
func touchedEnvs(rt route, r *http.Request) ([]envUse, error) {
	uses := []envUse{{env: r.PathValue("env"), perm: rt.perm}}
	if len(rt.body) == 0 || r.Body == nil || r.Body == http.NoBody {
		return uses, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "request body: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&fields); err != nil {
		// Not a JSON object: the handler refuses it as well, before it
		// acts; nothing in it names an environment.
		return uses, nil
	}
	for _, f := range rt.body {
		for k, raw := range fields {
			var v string
			if !strings.EqualFold(k, f.name) || json.Unmarshal(raw, &v) != nil || v == "" {
				continue
			}
			uses = append(uses, envUse{env: v, perm: f.perm, field: f.name})
		}
	}
	return uses, nil
}

// authorize returns nil when id holds the permission each use needs on its
// environment, else the EFORBIDDEN that names the first one missing. It is
// the one place that applies a route's declared permissions.
func authorize(id *gantry.Identity, uses []envUse) error {
	for _, u := range uses {
		if !id.Allows(u.perm, u.env) {
			return id.Denied(u.perm, u.env)
		}
	}
	return nil
}
