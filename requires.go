package gantry

import (
	"fmt"
	"strings"
)

// A service may require versions of other services of its app, or of
// other apps on the same server (services.<service>.requires): a deploy
// that would make a requirement false is refused before anything starts.

// RequiredApp is the prefix of a requirement on another app's version
// ("app:billing") rather than on a service of the same app.
const RequiredApp = "app:"

// Constraint is a version constraint: comparisons separated by commas,
// all of which must hold (">=1.1.0, <2.0.0"). A bare version means "=".
type Constraint struct {
	terms []constraintTerm
	text  string
}

type constraintTerm struct {
	op, version string
}

var constraintOps = []string{">=", "<=", "!=", "==", ">", "<", "="}

// ParseConstraint reads a constraint, or says what is wrong with it.
func ParseConstraint(s string) (Constraint, error) {
	c := Constraint{text: strings.TrimSpace(s)}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return Constraint{}, fmt.Errorf("constraint %q has an empty term: write comparisons such as \">=1.1.0, <2.0.0\"", s)
		}
		op := "="
		for _, o := range constraintOps {
			if rest, ok := strings.CutPrefix(part, o); ok {
				op, part = o, strings.TrimSpace(rest)
				break
			}
		}
		if op == "==" {
			op = "="
		}
		v := strings.TrimPrefix(part, "v")
		if v == "" || v[0] < '0' || v[0] > '9' || strings.ContainsAny(v, " \t") {
			return Constraint{}, fmt.Errorf("constraint %q: %q is not a version (want e.g. >=1.1.0 or <16.04.1)", s, part)
		}
		c.terms = append(c.terms, constraintTerm{op: op, version: v})
	}
	return c, nil
}

// String is the constraint as written.
func (c Constraint) String() string { return c.text }

// Allows reports whether version satisfies every term of c.
func (c Constraint) Allows(version string) bool {
	v := strings.TrimPrefix(version, "v")
	for _, t := range c.terms {
		cmp := CompareVersions(v, t.version)
		ok := false
		switch t.op {
		case "=":
			ok = cmp == 0
		case "!=":
			ok = cmp != 0
		case ">":
			ok = cmp > 0
		case ">=":
			ok = cmp >= 0
		case "<":
			ok = cmp < 0
		case "<=":
			ok = cmp <= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// CompareVersions orders semantic (1.2.3, 1.2.3-rc.1) and calendar
// (16.03.1, 16.03.1b) versions: dot-separated fields compared by their
// numbers, then by what follows the number (16.03.1 < 16.03.1a < 16.03.1b;
// a shorter run of letters first); a pre-release ("-rc.1") ranks below its
// release; build metadata ("+sha") is ignored. Missing fields count as 0.
func CompareVersions(a, b string) int {
	a, _, _ = strings.Cut(a, "+")
	b, _, _ = strings.Cut(b, "+")
	a, apre, _ := strings.Cut(a, "-")
	b, bpre, _ := strings.Cut(b, "-")
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if c := compareField(x, y); c != 0 {
			return c
		}
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	return compareField(apre, bpre)
}

// compareField compares "12", "1b" or "" (zero): number first, then the
// rest, a shorter rest first.
func compareField(x, y string) int {
	xn, xr := splitNumber(x)
	yn, yr := splitNumber(y)
	if len(xn) != len(yn) {
		return sign(len(xn) - len(yn))
	}
	if c := strings.Compare(xn, yn); c != 0 {
		return c
	}
	if len(xr) != len(yr) {
		return sign(len(xr) - len(yr))
	}
	return strings.Compare(xr, yr)
}

// splitNumber splits a field into its leading number (leading zeros
// dropped) and the rest.
func splitNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return strings.TrimLeft(s[:i], "0"), s[i:]
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
