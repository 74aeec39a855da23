package manifest

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestHooksGuideExamplesDecode keeps the examples of docs/hooks.md valid:
// each yaml block, laid over a minimal manifest, must decode.
func TestHooksGuideExamplesDecode(t *testing.T) {
	data, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```yaml\n")[1:]
	if len(blocks) < 4 {
		t.Fatalf("docs/hooks.md has %d yaml examples, want at least 4", len(blocks))
	}
	for i, b := range blocks {
		example, _, _ := strings.Cut(b, "```")
		doc := map[string]any{
			"app":          "shop",
			"services":     map[string]any{"web": map[string]any{"build": map[string]any{"artifacts": []string{"bin/web"}}, "run": "bin/web"}},
			"environments": map[string]any{"prod": nil},
		}
		var top map[string]any
		if err := yaml.Unmarshal([]byte(example), &top); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, example)
			continue
		}
		for k, v := range top {
			doc[k] = v
		}
		full, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode("hooks.md", full); err != nil {
			t.Errorf("example %d does not decode:\n%s\n%v", i+1, example, err)
		}
	}
}
