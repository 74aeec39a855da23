package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildBinary builds the gantry binary the way `make build` does, once per
// benchmark, into a temporary directory.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("go not on PATH")
	}
	bin := filepath.Join(tb.TempDir(), "gantry")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runOnce runs argv and returns its wall time.
func runOnce(tb testing.TB, argv ...string) time.Duration {
	tb.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return time.Since(begin)
}

// maxRSS is argv's maximum resident set size in KiB, or -1 without GNU
// time. Not from this process's ProcessState: Go starts children with
// CLONE_VM, and Linux counts the parent's pages, shared until exec, in the
// child's ru_maxrss (it reads as this test binary's size). time(1) is
// small, so the figure is the command's own.
func maxRSS(tb testing.TB, argv ...string) int64 {
	tb.Helper()
	gnuTime := "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		return -1
	}
	out, err := exec.Command(gnuTime, append([]string{"-f", "maxrss=%M"}, argv...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%v: %v\n%s", argv, err, out)
	}
	_, v, ok := strings.Cut(string(out), "maxrss=")
	if !ok {
		tb.Fatalf("time(1) printed no maxrss: %s", out)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		tb.Fatalf("time(1): %v", err)
	}
	return kib
}

// initTime sums the package initialisation clock times GODEBUG=inittrace=1
// prints ("init <pkg> @<t> ms, <clock> ms clock, …"), in milliseconds.
func initTime(tb testing.TB, bin string) (float64, int) {
	tb.Helper()
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s version: %v\n%s", bin, err, stderr.String())
	}
	var sum float64
	n := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		ms, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			tb.Fatalf("inittrace line %q: %v", sc.Text(), err)
		}
		sum += ms
		n++
	}
	return sum, n
}

// BenchmarkCLIStart measures what every CLI verb pays before its first
// byte: `gantry version` from exec to exit, next to true(1) run the same
// way in the same loop (the cost of fork and exec alone). It reports
// gantry's and true's wall time per run (mean and fastest) and the ratio of
// the means; after the timed loop, up to 20 runs of each give the largest
// max RSS (through time(1)) and the package initialisation time summed
// from GODEBUG=inittrace=1 (averaged), with the number of packages that
// have init work. With
// GANTRY_START_BASELINE=<another gantry binary> that binary runs in the
// same loop too (base-* figures): a before/after in one run.
//
//	go test ./cmd/gantry -run '^$' -bench CLIStart -benchtime 200x
func BenchmarkCLIStart(b *testing.B) {
	bin := buildBinary(b)
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true(1) on PATH")
	}
	base := os.Getenv("GANTRY_START_BASELINE")
	runOnce(b, bin, "version") // page cache warm for all
	runOnce(b, truePath)
	if base != "" {
		runOnce(b, base, "version")
	}
	var gantryTime, trueTime, baseTime time.Duration
	// The fastest run of each, less sensitive than the mean to a busy machine.
	gantryMin, trueMin, baseMin := time.Hour, time.Hour, time.Hour
	b.ResetTimer()
	for b.Loop() {
		d := runOnce(b, bin, "version")
		gantryTime, gantryMin = gantryTime+d, min(gantryMin, d)
		d = runOnce(b, truePath)
		trueTime, trueMin = trueTime+d, min(trueMin, d)
		if base != "" {
			d = runOnce(b, base, "version")
			baseTime, baseMin = baseTime+d, min(baseMin, d)
		}
	}
	b.StopTimer()
	n := b.N
	runs := min(n, 20)
	var initSum float64
	var pkgs int
	var gantryRSS, trueRSS int64
	for range runs {
		ms, k := initTime(b, bin)
		initSum += ms
		pkgs = k
		gantryRSS = max(gantryRSS, maxRSS(b, bin, "version"))
		trueRSS = max(trueRSS, maxRSS(b, truePath))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(gantryTime.Nanoseconds())/float64(n), "gantry-ns/op")
	b.ReportMetric(float64(trueTime.Nanoseconds())/float64(n), "true-ns/op")
	b.ReportMetric(float64(gantryTime)/float64(trueTime), "x-true")
	b.ReportMetric(float64(gantryMin.Nanoseconds()), "gantry-min-ns")
	b.ReportMetric(float64(trueMin.Nanoseconds()), "true-min-ns")
	b.ReportMetric(float64(gantryRSS)/1024, "gantry-maxrss-MiB")
	b.ReportMetric(float64(trueRSS)/1024, "true-maxrss-MiB")
	b.ReportMetric(initSum/float64(runs), "init-ms")
	b.ReportMetric(float64(pkgs), "init-pkgs")
	if base == "" {
		return
	}
	var baseInit float64
	var baseRSS int64
	for range runs {
		ms, _ := initTime(b, base)
		baseInit += ms
		baseRSS = max(baseRSS, maxRSS(b, base, "version"))
	}
	b.ReportMetric(float64(baseTime.Nanoseconds())/float64(n), "base-ns/op")
	b.ReportMetric(float64(baseMin.Nanoseconds()), "base-min-ns")
	b.ReportMetric(float64(baseRSS)/1024, "base-maxrss-MiB")
	b.ReportMetric(baseInit/float64(runs), "base-init-ms")
}
