package manifest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// MustReadFile returns the file's contents or fails the test.
func MustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := MustReadFile(t, golden)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rerun with -update to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func cases(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/%s: %v", dir, err)
	}
	return files
}

func TestDecodeGood(t *testing.T) {
	for _, file := range cases(t, "good") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			m, err := manifest.Decode(filepath.Base(file), MustReadFile(t, file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".yml")+".golden", append(got, '\n'))
			roundTrip(t, m)
			effective, err := manifest.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".yml")+".effective", effective)
			if ps := manifest.Check(filepath.Base(file), MustReadFile(t, file)); ps != nil {
				t.Errorf("Check = %v, want no problems", ps)
			}
		})
	}
}

func TestDecodeBad(t *testing.T) {
	for _, file := range cases(t, "bad") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			name := filepath.Base(file)
			data := MustReadFile(t, file)
			m, err := manifest.Decode(name, data)
			if err == nil {
				t.Fatalf("Decode succeeded with %+v, want an error", m)
			}
			if m != nil {
				t.Errorf("Decode returned a manifest with an error")
			}
			var merr *manifest.Error
			if !errors.As(err, &merr) {
				t.Fatalf("error %T is not a *manifest.Error", err)
			}
			if got, want := gantry.ErrorCode(err), gantry.EINVALID; got != want {
				t.Errorf("ErrorCode = %q, want %q", got, want)
			}
			if got, want := gantry.ErrorMessage(err), err.Error(); got != want {
				t.Errorf("ErrorMessage = %q, want the full list %q", got, want)
			}
			if got, want := len(manifest.Check(name, data)), len(merr.Problems); got != want {
				t.Errorf("Check found %d problems, Decode %d", got, want)
			}
			for _, p := range merr.Problems {
				if p.File != name || p.Line < 1 || p.Column < 1 || p.Message == "" {
					t.Errorf("problem %+v lacks a file, position or message", p)
				}
			}
			checkGolden(t, strings.TrimSuffix(file, ".yml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestDecodeDefaults pins the defaults that the rest of Gantry relies on,
// independently of the golden files, which -update would rewrite.
func TestDecodeDefaults(t *testing.T) {
	const src = `
app: shop
services:
  web:
    build: {artifacts: [bin/web]}
    run: bin/web
  worker:
    build: {artifacts: [bin/worker]}
    run: bin/worker
    http: false
environments:
  test:
  prod:
    runtime: {driver: kubernetes}
`
	m, err := manifest.Decode("gantry.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	web, worker := m.Services["web"], m.Services["worker"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"version.scheme", m.Version.Scheme, "semver"},
		{"web.http", web.HTTP, true},
		{"web.instances", web.Instances, 1},
		{"web.health.path", web.Health.Path, "/up"},
		{"web.health.interval", web.Health.Interval, gantry.DefaultHealthPeriod},
		{"web.health.timeout", web.Health.Timeout, gantry.DefaultHealthWait},
		{"web.health.healthy_after", web.Health.HealthyAfter, 1},
		{"web.health.status", [2]int{web.Health.StatusMin, web.Health.StatusMax}, [2]int{200, 399}},
		{"web.stop", web.Stop, gantry.StopSpec{Signal: "SIGTERM", Timeout: gantry.DefaultStopTimeout}},
		{"web.order", web.Order, 0},
		{"web.ready_delay", web.Ready, time.Duration(0)},
		{"worker.http", worker.HTTP, false},
		{"worker.health.path", worker.Health.Path, ""},
		{"worker.ready_delay", worker.Ready, time.Second},
		{"test.hosts", strings.Join(m.Environments["test"].Hosts, ","), "test.shop.localhost"},
		{"prod.hosts", strings.Join(m.Environments["prod"].Hosts, ","), "shop.localhost"},
		{"test.driver", m.Environments["test"].Runtime.Driver, "process"},
		{"test.strategy", m.Environments["test"].Strategy, gantry.StrategyBlueGreen},
		{"test.keep_warm", m.Environments["test"].KeepWarm, gantry.DefaultKeepWarm},
		{"prod.namespace", m.Environments["prod"].Runtime.Namespace, "shop-prod"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestDecodeProblemsSorted checks that problems come in file order, whatever
// order the checks found them in.
func TestDecodeProblemsSorted(t *testing.T) {
	const src = "app: Shop\nservices:\n  web: {run: x}\nenvironments:\n  a: {promote_from: b}\n  b: {promote_from: a, hosts: [X]}\n"
	ps := manifest.Check("m.yml", []byte(src))
	if len(ps) < 4 {
		t.Fatalf("got %d problems, want at least 4: %v", len(ps), ps)
	}
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Column > b.Column) {
			t.Errorf("problem %d (%v) comes before %d (%v)", i-1, a, i, b)
		}
	}
}

func TestEditDistanceHints(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"instnaces: 2", `did you mean "instances"?`},
		{"instance: 2", `did you mean "instances"?`},
		{"helth: {}", `did you mean "health"?`},
		{"zzzzzz: 1", `unknown key "zzzzzz"`},
	}
	for _, tt := range tests {
		src := "app: a\nservices:\n  web:\n    build: {artifacts: [x]}\n    run: x\n    " + tt.src + "\nenvironments: {test: }\n"
		ps := manifest.Check("m.yml", []byte(src))
		if len(ps) != 1 || !strings.Contains(ps[0].Message, tt.want) {
			t.Errorf("%q: got %v, want one problem containing %q", tt.src, ps, tt.want)
		}
		if tt.want == `unknown key "zzzzzz"` && len(ps) == 1 && strings.Contains(ps[0].Message, "did you mean") {
			t.Errorf("%q: got a hint for a key that is far from any: %v", tt.src, ps[0])
		}
	}
}

// TestDecodeTruncatesProblems checks that a hopeless file gives a bounded list.
func TestDecodeTruncatesProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("app: shop\n")
	for i := range 200 {
		fmt.Fprintf(&b, "unknown%d: x\n", i)
	}
	ps := manifest.Check("m.yml", []byte(b.String()))
	if len(ps) != 51 {
		t.Fatalf("got %d problems, want 50 and a last line saying how many more", len(ps))
	}
	// 200 unknown keys and 2 missing ones (services, environments).
	if got, want := ps[50].Message, "152 more problems not shown"; got != want {
		t.Errorf("last problem = %q, want %q", got, want)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	data := append([]byte("app: shop\n#"), bytes.Repeat([]byte("x"), manifest.MaxSize)...)
	ps := manifest.Check("m.yml", data)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "more than the limit") {
		t.Errorf("got %v, want one problem about the size limit", ps)
	}
}
