package manifest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const reference = "../docs/manifest.md"

// keyRow matches a row of a reference table: | `services.<service>.run` | ...
var keyRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")

// TestReferenceMatchesDecoder keeps docs/manifest.md and the decoder's key
// list in step: every key the decoder accepts has a row, and every row names
// a key the decoder accepts.
func TestReferenceMatchesDecoder(t *testing.T) {
	data, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range keyRow.FindAllStringSubmatch(string(data), -1) {
		if documented[m[1]] {
			t.Errorf("%s documents %s twice", reference, m[1])
		}
		documented[m[1]] = true
	}
	known := keyPaths()
	if len(known) < 50 {
		t.Fatalf("keyPaths() = %d keys, want the whole schema", len(known))
	}
	for _, k := range known {
		if !documented[k] {
			t.Errorf("key %s is decoded but not documented in %s", k, reference)
		}
	}
	for k := range documented {
		if !slices.Contains(known, k) {
			t.Errorf("%s documents %s, which the decoder does not know", reference, k)
		}
	}
}

// TestReferenceExampleDecodes checks that the reference's example is valid.
func TestReferenceExampleDecodes(t *testing.T) {
	data, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```yaml\n")
	if !ok {
		t.Fatalf("%s has no yaml example", reference)
	}
	example, _, _ := strings.Cut(rest, "```")
	if _, err := Decode("docs/manifest.md", []byte(example)); err != nil {
		t.Errorf("the example in %s does not decode:\n%v", reference, err)
	}
}
