package api

import (
	"context"
	"net/http"
	"sort"

	"github.com/gantry-dev/gantry"
)

// Diff compares what two environments run. Variables are compared by name
// and value, secrets by name only: their values never leave the server.
type Diff struct {
	A, B      string         `json:"-"`
	Envs      [2]DiffSide    `json:"environments"`
	Same      bool           `json:"same_release"`
	Artifacts []ArtifactDiff `json:"artifacts"`
	Vars      []NameDiff     `json:"vars"`
	Secrets   []NameDiff     `json:"secrets"`
}

// DiffSide is what one environment runs.
type DiffSide struct {
	Env     string `json:"env"`
	Release string `json:"release,omitempty"`
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
}

// ArtifactDiff compares one service's artifact digest.
type ArtifactDiff struct {
	Service string `json:"service"`
	A       string `json:"a,omitempty"`
	B       string `json:"b,omitempty"`
	Same    bool   `json:"same"`
}

// NameDiff says where a variable or secret is set, and whether it differs.
type NameDiff struct {
	Name  string `json:"name"`
	InA   bool   `json:"in_a"`
	InB   bool   `json:"in_b"`
	Equal bool   `json:"equal"`
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	app, a, b := r.PathValue("app"), r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if a == "" || b == "" {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "diff needs two environments (a and b)"))
		return
	}
	d, err := s.computeDiff(r.Context(), app, a, b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) computeDiff(ctx context.Context, app, a, b string) (*Diff, error) {
	d := &Diff{}
	var rels [2]*gantry.Release
	var envs [2]*gantry.Environment
	for i, name := range []string{a, b} {
		env, err := s.Store.FindEnvironment(ctx, app, name)
		if err != nil {
			return nil, err
		}
		envs[i] = env
		d.Envs[i].Env = name
		if slot := env.ActiveSlot(); slot != nil {
			rel, err := s.Store.FindRelease(ctx, app, slot.ReleaseID)
			if err != nil {
				return nil, err
			}
			rels[i] = rel
			d.Envs[i].Release, d.Envs[i].Version, d.Envs[i].Commit = rel.ID, rel.Version, rel.Commit
		}
	}
	d.Same = rels[0] != nil && rels[1] != nil && rels[0].ID == rels[1].ID
	services := map[string]bool{}
	for _, rel := range rels {
		if rel != nil {
			for _, svc := range rel.ServiceNames() {
				services[svc] = true
			}
		}
	}
	for _, svc := range sortedKeys(services) {
		ad := ArtifactDiff{Service: svc}
		if rels[0] != nil {
			ad.A = rels[0].Artifacts[svc].Digest
		}
		if rels[1] != nil {
			ad.B = rels[1].Artifacts[svc].Digest
		}
		ad.Same = ad.A != "" && ad.A == ad.B
		d.Artifacts = append(d.Artifacts, ad)
	}
	names := map[string]bool{}
	for _, e := range envs {
		for k := range e.Spec.Vars {
			names[k] = true
		}
	}
	for _, k := range sortedKeys(names) {
		va, ina := envs[0].Spec.Vars[k]
		vb, inb := envs[1].Spec.Vars[k]
		d.Vars = append(d.Vars, NameDiff{Name: k, InA: ina, InB: inb, Equal: ina && inb && va == vb})
	}
	secrets := map[string][2]bool{}
	for i, e := range envs {
		for _, k := range e.Spec.Secrets {
			v := secrets[k]
			v[i] = true
			secrets[k] = v
		}
	}
	keys := make(map[string]bool, len(secrets))
	for k := range secrets {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		d.Secrets = append(d.Secrets, NameDiff{Name: k, InA: secrets[k][0], InB: secrets[k][1]})
	}
	return d, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
