package gantry_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Doc        string
	Name       string
	Imports    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/gantry-dev/gantry"

// TestPackagesHaveDocs: every package says what it is for.
func TestPackagesHaveDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}

// TestImportRules keeps the layout honest: the root package uses the
// standard library only; implementations never import each other, only the
// root package, internal helpers and their own subpackages; only cmd/gantry
// wires them together.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			inModule := strings.HasPrefix(imp, module)
			irel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			switch {
			case rel == "":
				if inModule || (strings.Contains(strings.Split(imp, "/")[0], ".")) {
					t.Errorf("the root package imports %s: it must use the standard library only", imp)
				}
			case strings.HasPrefix(rel, "cmd/"), strings.HasPrefix(rel, "internal/"), strings.HasPrefix(rel, "examples"), strings.HasPrefix(rel, "bench/"):
				// cmd wires everything; internal helpers and test apps are free.
			case inModule && irel != "" && !strings.HasPrefix(irel, "internal/") && !strings.HasPrefix(irel, rel+"/") && !strings.HasPrefix(rel, irel+"/"):
				t.Errorf("%s imports %s: implementations talk through the root package, not to each other", rel, irel)
			}
			if rel == "proxy" || strings.HasPrefix(rel, "proxy/") {
				for _, banned := range []string{"k8s.io/", "github.com/docker/", "database/sql"} {
					if strings.HasPrefix(imp, banned) {
						t.Errorf("%s imports %s: the router must not depend on runtimes or databases", rel, imp)
					}
				}
			}
		}
	}
}
