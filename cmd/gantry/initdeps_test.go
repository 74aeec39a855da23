package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// heavyInit are packages whose initialisation every gantry command would
// pay, CLI verbs included, for what only one driver needs: each one was
// measured with GODEBUG=inittrace=1 (see BenchmarkCLIStart).
var heavyInit = map[string]string{
	"k8s.io/client-go/kubernetes/scheme": "registers every built-in API group at init (1.3–9 ms); the kubernetes driver has its own scheme, built on first use",
	"k8s.io/client-go/kubernetes":        "the generated clientset imports kubernetes/scheme; use the kubernetes driver's Client",
	// pterm before v0.12.84 (linked by pgroll's migrations package) took
	// gookit/color, whose init reads the terminal's capabilities (0.3–0.5 ms).
	"github.com/gookit/color": "pterm v0.12.84 or later no longer needs it (go.mod)",
	"github.com/xo/terminfo":  "came with gookit/color; pterm v0.12.84 or later no longer needs it",
	// client_golang before v1.21 linked zstd into promhttp (its tables built at init).
	"github.com/klauspost/compress/zstd": "promhttp takes zstd only from its promhttp/zstd package (client_golang v1.21 or later); the router does not offer it",
}

// kubeGroups are the built-in Kubernetes API groups the binary may link;
// each k8s.io/api package adds its types' init and the binary's size.
// batch/v1 (the Job of a clone's copy of persistent directories) costs
// 0.01 ms and 7 KB of init (GODEBUG=inittrace=1 gantry version).
var kubeGroups = []string{"k8s.io/api/core/v1", "k8s.io/api/apps/v1", "k8s.io/api/batch/v1"}

// TestNoHeavyInit keeps the binary's start small: `go list -deps` of
// cmd/gantry must not name a package of heavyInit, nor a Kubernetes API
// group beyond kubeGroups.
func TestNoHeavyInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/gantry-dev/gantry/driver/kubernetes") {
		t.Fatal("go list -deps does not list the kubernetes driver: the check would prove nothing")
	}
	for _, p := range deps {
		if why, ok := heavyInit[p]; ok {
			t.Errorf("the gantry binary imports %s: %s", p, why)
		}
		if strings.HasPrefix(p, "k8s.io/api/") && !slices.Contains(kubeGroups, p) {
			t.Errorf("the gantry binary imports %s: only %v are wanted (each group's types initialise in every command)", p, kubeGroups)
		}
	}
}

// TestNoEagerRegexp keeps this module's packages linked into gantry from
// compiling regular expressions in their package initialisation, which
// every command pays (a bounded repetition such as {0,127} alone costs
// about 0.1 ms and a thousand allocations): a package-level expression is
// an internal/lazyre.Regexp (in the root package, which takes only the
// standard library, a sync.OnceValue), compiled on first use.
func TestNoEagerRegexp(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,Module", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath, Dir string
			GoFiles         []string
			Module          *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/gantry-dev/gantry" {
			continue
		}
		for _, name := range p.GoFiles {
			checked++
			for _, at := range eagerRegexps(t, filepath.Join(p.Dir, name)) {
				t.Errorf("%s: regexp compiled at package level; use internal/lazyre.New", at)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: the check would prove little", checked)
	}
}

// eagerRegexps returns the positions of package-level variables of file
// initialised with a call of regexp.MustCompile or regexp.Compile.
func eagerRegexps(t *testing.T, file string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		ast.Inspect(g, func(n ast.Node) bool {
			if _, ok := n.(*ast.FuncLit); ok {
				return false // runs when called, not at init
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "regexp" && strings.HasSuffix(sel.Sel.Name, "Compile") {
					found = append(found, fset.Position(call.Pos()).String())
				}
			}
			return true
		})
	}
	return found
}
