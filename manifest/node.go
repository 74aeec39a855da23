package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/lazyre"

	"gopkg.in/yaml.v3"
)

// decoder walks one manifest's node tree and collects problems. It never
// stops at the first problem: a value that is wrong is reported and skipped,
// and the walk goes on.
type decoder struct {
	file     string
	problems []Problem
}

// field is one key of a mapping and its value (aliases resolved).
type field struct {
	key, val *yaml.Node
}

func (d *decoder) addf(n *yaml.Node, path, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	// An alias chain is at most as long as the number of anchors; the bound
	// only guards against a cycle the parser might let through.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 1000; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int":
			return "the integer " + clip(n.Value)
		case "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + clip(n.Value)
		case "!!null":
			return "nothing"
		default:
			return "a value tagged " + clip(n.ShortTag())
		}
	}
	return "an unexpected node"
}

// clip keeps quoted user input short in messages.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// entries returns the keys of mapping n in document order, reporting
// duplicate and non-string keys. A null counts as an empty mapping, so that
// "environments: {test: }" declares test with all defaults.
func (d *decoder) entries(n *yaml.Node, path string) []field {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "want a mapping, got %s", describe(n))
		return nil
	}
	var out []field
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			if k.ShortTag() == "!!merge" {
				d.addf(k, path, "merge keys (<<) are not supported; write the keys out")
			} else {
				d.addf(k, path, "a key must be a plain name, got %s", describe(k))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.addf(k, join(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, field{key: k, val: v})
	}
	return out
}

// mapping returns the keys of mapping n by name, reporting any key that the
// schema path does not list in keys, with a hint when a known key is close.
func (d *decoder) mapping(n *yaml.Node, path, schema string) map[string]field {
	known, ok := keys()[schema]
	if !ok {
		panic("manifest: no keys for schema path " + strconv.Quote(schema))
	}
	out := map[string]field{}
	for _, f := range d.entries(n, path) {
		if !contains(known, f.key.Value) {
			d.addf(f.key, join(path, f.key.Value), "unknown key %q%s", f.key.Value, didYouMean(f.key.Value, known))
			continue
		}
		out[f.key.Value] = f
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// require reports a missing key; at is the mapping that should hold it.
func (d *decoder) require(fs map[string]field, at *yaml.Node, path, key string) (field, bool) {
	f, ok := fs[key]
	if !ok {
		d.addf(at, join(path, key), "required key missing")
	}
	return f, ok
}

// list returns the items of sequence n; a null is an empty list.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%s])", clip(n.Value))
		}
		d.addf(n, path, "want a list, got %s%s", describe(n), hint)
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		out[i] = resolve(item)
	}
	return out
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			hint = " (quote it to make it a string)"
		}
		d.addf(n, path, "want a string, got %s%s", describe(n), hint)
		return "", false
	}
	return n.Value, true
}

// nonEmpty is str for values that mean nothing when empty.
func (d *decoder) nonEmpty(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.addf(resolve(n), path, "must not be empty")
		return "", false
	}
	return s, ok
}

// oneOf is str for enumerated values.
func (d *decoder) oneOf(n *yaml.Node, path string, allowed []string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if !contains(allowed, s) {
		d.addf(resolve(n), path, "unknown value %q: want one of %s%s", clip(s), strings.Join(allowed, ", "), didYouMean(s, allowed))
		return "", false
	}
	return s, true
}

// bigInt matches integers too large for the YAML library, which then calls
// them floats.
var bigInt = lazyre.New(`^[-+]?[0-9_]+$`)

// integer reads an integer within [lo, hi].
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int) (int, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && bigInt.MatchString(n.Value) {
		d.addf(n, path, "%s is out of range: want %d to %d", clip(n.Value), lo, hi)
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.addf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	var v int
	if err := n.Decode(&v); err != nil || v < lo || v > hi {
		d.addf(n, path, "%s is out of range: want %d to %d", clip(n.Value), lo, hi)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.addf(n, path, "want true or false, got %s", describe(n))
		return false, false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		d.addf(n, path, "want true or false, got %s", describe(n))
		return false, false
	}
	return v, true
}

// duration reads a Go duration such as 1s, 10m or 1h30m. Zero is allowed
// only where it means something (allowZero).
func (d *decoder) duration(n *yaml.Node, path string, allowZero bool) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		d.addf(n, path, "want a duration such as 30s or 10m, got %s (add a unit: ms, s, m or h)", describe(n))
		return 0, false
	}
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.addf(n, path, "invalid duration %q: want a number with a unit, such as 500ms, 30s, 10m or 1h", clip(s))
		return 0, false
	}
	if v < 0 || (v == 0 && !allowZero) {
		d.addf(n, path, "duration %q must be positive", clip(s))
		return 0, false
	}
	return v, true
}

// stringList reads a list of strings, each checked by valid (which reports its
// own problems and returns false for a bad item). Duplicates are reported.
func (d *decoder) stringList(n *yaml.Node, path string, valid func(item *yaml.Node, path, s string) bool) []string {
	var out []string
	seen := map[string]bool{}
	for i, item := range d.list(n, path) {
		p := index(path, i)
		s, ok := d.str(item, p)
		if !ok || (valid != nil && !valid(item, p, s)) {
			continue
		}
		if seen[s] {
			d.addf(item, p, "%q is listed twice", clip(s))
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// stringMap reads a mapping of names to scalar values. Numbers and booleans
// are taken as written ("8080", "true") because environment variables and
// build args are strings anyway and quoting every one is a chore.
func (d *decoder) stringMap(n *yaml.Node, path string, validKey func(k *yaml.Node, path string) bool) map[string]string {
	fs := d.entries(n, path)
	if len(fs) == 0 {
		return nil
	}
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		p := join(path, f.key.Value)
		if validKey != nil && !validKey(f.key, p) {
			continue
		}
		v := f.val
		if v.Kind != yaml.ScalarNode || isNull(v) {
			d.addf(v, p, "want a string, got %s", describe(v))
			continue
		}
		out[f.key.Value] = v.Value
	}
	return out
}
