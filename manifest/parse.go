package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/internal/lazyre"

	"gopkg.in/yaml.v3"
)

// MaxSize bounds a manifest; a real one is a few kilobytes.
const MaxSize = 1 << 20

// maxExpanded bounds the node count after aliases are expanded, so that a
// few nested aliases cannot make the walk exponential ("billion laughs").
const maxExpanded = 100_000

// yamlLine finds the line in the YAML parser's messages ("yaml: line 3: ...").
var yamlLine = lazyre.New(`^yaml: line (\d+): (.*)$`)

// parse returns the document's top node, or nil after reporting why there is none.
func (d *decoder) parse(data []byte) (root *yaml.Node) {
	at := &yaml.Node{Line: 1, Column: 1}
	if len(data) > MaxSize {
		d.addf(at, "", "manifest is %d bytes, more than the limit of %d", len(data), MaxSize)
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := safeDecode(dec, &doc)
	if errors.Is(err, io.EOF) || (err == nil && (len(doc.Content) == 0 || isNull(doc.Content[0]))) {
		d.addf(at, "", "manifest is empty")
		return nil
	}
	if err != nil {
		d.syntaxError(data, err)
		return nil
	}
	var extra yaml.Node
	if err := safeDecode(dec, &extra); err == nil {
		d.addf(&extra, "", "only one YAML document is allowed; remove the --- separator")
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(data, err)
		return nil
	}
	if n := expandedSize(doc.Content[0], map[*yaml.Node]int{}); n > maxExpanded {
		d.addf(at, "", "manifest is too large: more than %d values once aliases are expanded", maxExpanded)
		return nil
	}
	return doc.Content[0]
}

// safeDecode turns a panic inside the YAML library into an error: input
// that crashes the parser is bad input, not a reason to crash the server.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse: %v", r)
		}
	}()
	return dec.Decode(n)
}

// syntaxError reports a parser error at its line, pointing at a tab in the
// indentation if there is one, since that is the commonest cause.
func (d *decoder) syntaxError(data []byte, err error) {
	line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	col := 1
	lines := strings.Split(string(data), "\n")
	for _, l := range []int{line - 1, line} { // the parser sometimes names the line before the tab
		if l >= 1 && l <= len(lines) {
			text := lines[l-1]
			indent := len(text) - len(strings.TrimLeft(text, " \t"))
			if i := strings.IndexByte(text[:indent], '\t'); i >= 0 {
				d.addf(&yaml.Node{Line: l, Column: i + 1}, "", "invalid YAML: tab in indentation; indent with spaces")
				return
			}
		}
	}
	d.addf(&yaml.Node{Line: line, Column: col}, "", "invalid YAML: %s", msg)
}

// expandedSize counts the nodes a walk would visit, following aliases, and
// stops counting past maxExpanded. memo also breaks alias cycles.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = maxExpanded + 1 // in progress: a cycle counts as too big
	size := 1
	if n.Kind == yaml.AliasNode {
		size += expandedSize(n.Alias, memo)
	}
	for _, c := range n.Content {
		size += expandedSize(c, memo)
		if size > maxExpanded {
			break
		}
	}
	memo[n] = size
	return size
}
