package main

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A docStep is one command of a how-to, as the docs test runs it: a line of
// an `sh` block, with its continuation lines and heredoc bodies.
type docStep struct {
	Line     int    // line of the markdown file where the command starts
	Text     string // the command as printed, comments included
	WantExit int    // from a trailing `# exits N`; 0 otherwise
	Skip     string // why the docs test does not run it, from `(not run by the docs test: …)`
}

// The conventions a reader sees in the markdown:
//
//   - `# exits N` in a command's trailing comment: the command is expected to
//     fail with exit code N (a refusal that is part of the story);
//   - `(not run by the docs test: REASON)` in a trailing comment: the test
//     does not run that command;
//   - `<!-- docs-test: skip REASON -->` on the line before a fenced block:
//     the test runs none of the block.
var (
	exitsRE     = regexp.MustCompile(`#.*\bexits (\d+)\b`)
	skipLineRE  = regexp.MustCompile(`\(not run by the docs test: ([^)]*)\)`)
	skipBlockRE = regexp.MustCompile(`^\s*<!-- docs-test: skip (.*?)\s*-->\s*$`)
	heredocRE   = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
	fenceRE     = regexp.MustCompile("^(\\s*)```(\\w*)\\s*$")
)

// parseDoc returns the steps of every ```sh block of a markdown document,
// in order. A block marked with `<!-- docs-test: skip … -->` yields its
// commands with Skip set, so the test can say what it left out.
func parseDoc(name, text string) ([]docStep, error) {
	var steps []docStep
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var (
		lineNo    int
		inBlock   bool
		isSh      bool
		indent    string
		blockSkip string
		lastNote  string // the last non-blank line before a fence
		cur       *docStep
		heredoc   string // terminator of the heredoc being read
	)
	flush := func() {
		if cur != nil {
			steps = append(steps, *cur)
			cur = nil
		}
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if m := fenceRE.FindStringSubmatch(line); m != nil && heredoc == "" {
			if !inBlock {
				inBlock, indent, isSh = true, m[1], m[2] == "sh"
				blockSkip = ""
				if sm := skipBlockRE.FindStringSubmatch(lastNote); sm != nil {
					blockSkip = sm[1]
				}
				continue
			}
			if cur != nil && strings.HasSuffix(strings.TrimSpace(cur.Text), "\\") {
				return nil, fmt.Errorf("%s:%d: the block ends inside a continued command", name, lineNo)
			}
			flush()
			inBlock = false
			continue
		}
		if !inBlock {
			if strings.TrimSpace(line) != "" {
				lastNote = line
			}
			continue
		}
		if !isSh {
			continue
		}
		line = strings.TrimPrefix(line, indent)
		if heredoc != "" {
			cur.Text += "\n" + line
			if strings.TrimSpace(line) == heredoc {
				heredoc = ""
				flush()
			}
			continue
		}
		if cur != nil { // a continuation line
			cur.Text += "\n" + line
		} else {
			code, _ := splitComment(line)
			if strings.TrimSpace(code) == "" {
				continue // blank or comment only
			}
			cur = &docStep{Line: lineNo, Text: line, Skip: blockSkip}
			_, comment := splitComment(line)
			if m := exitsRE.FindStringSubmatch(comment); m != nil {
				cur.WantExit, _ = strconv.Atoi(m[1])
			}
			if m := skipLineRE.FindStringSubmatch(comment); m != nil && cur.Skip == "" {
				cur.Skip = m[1]
			}
		}
		code, _ := splitComment(line)
		if m := heredocRE.FindStringSubmatch(code); m != nil {
			heredoc = m[1]
			continue
		}
		if strings.HasSuffix(strings.TrimRight(code, " \t"), "\\") {
			continue
		}
		flush()
	}
	if inBlock {
		return nil, fmt.Errorf("%s: a fenced block is not closed", name)
	}
	return steps, sc.Err()
}

// splitComment splits a shell line into its code and its trailing comment
// (from an unquoted `#` at the start of a word).
func splitComment(line string) (code, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, ""
}

// background reports whether a command leaves a process running: it ends
// with `&` (not `&&`).
func (s docStep) background() bool {
	code, _ := splitComment(strings.SplitN(s.Text, "\n", 2)[0])
	code = strings.TrimRight(code, " \t")
	return strings.HasSuffix(code, "&") && !strings.HasSuffix(code, "&&")
}

func TestDocsParse(t *testing.T) {
	doc := "intro\n" +
		"```sh\n" +
		"gantry status            # the release id\n" +
		"\n" +
		"# a note\n" +
		"gantry promote test prod # exits 4: prod needs an approval\n" +
		"gantry logs prod web -f  # (not run by the docs test: follows until interrupted)\n" +
		"cat > a.yml <<'EOF'\n" +
		"# not a comment: part of the file\n" +
		"EOF\n" +
		"gantry deploy test \\\n" +
		"  --ref main\n" +
		"echo '# quoted' && gantry server --listen 127.0.0.1:7878 & # started\n" +
		"```\n" +
		"<!-- docs-test: skip needs a cluster -->\n" +
		"   ```sh\n" +
		"   gantry deploy k8s --ref main\n" +
		"   ```\n" +
		"```yaml\n" +
		"app: x\n" +
		"```\n"
	steps, err := parseDoc("doc.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []docStep{
		{Line: 3, Text: "gantry status            # the release id"},
		{Line: 6, Text: "gantry promote test prod # exits 4: prod needs an approval", WantExit: 4},
		{Line: 7, Text: "gantry logs prod web -f  # (not run by the docs test: follows until interrupted)", Skip: "follows until interrupted"},
		{Line: 8, Text: "cat > a.yml <<'EOF'\n# not a comment: part of the file\nEOF"},
		{Line: 11, Text: "gantry deploy test \\\n  --ref main"},
		{Line: 13, Text: "echo '# quoted' && gantry server --listen 127.0.0.1:7878 & # started"},
		{Line: 17, Text: "gantry deploy k8s --ref main", Skip: "needs a cluster"},
	}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, steps[i], want[i])
		}
	}
	if !steps[5].background() || steps[4].background() {
		t.Errorf("background: got %v and %v, want true and false", steps[5].background(), steps[4].background())
	}
}
