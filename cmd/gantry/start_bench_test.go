package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildBinary builds the gantry binary the way `make build` does, once per
// benchmark, into a temporary directory, and installs it (see installed).
func buildBinary(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("go not on PATH")
	}
	linked := filepath.Join(tb.TempDir(), "gantry")
	cmd := exec.Command("go", "build", "-trimpath", "-o", linked, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return installed(tb, linked)
}

// baselineBinary is GANTRY_START_BASELINE's binary, installed, or "".
func baselineBinary(tb testing.TB) string {
	tb.Helper()
	if base := os.Getenv("GANTRY_START_BASELINE"); base != "" {
		return installed(tb, base)
	}
	return ""
}

// installed copies the binary at src into a new file with plain writes, as
// an install or a download does, and returns the copy's path. Both binaries
// of a before/after are measured from such a copy: started from the file
// the linker has just written (through a mapping), the same bytes showed
// about 2.5 MiB more max RSS and fewer page faults than from their copy
// (26.6 against 23.8 MiB for `gantry version`), probably because the page
// cache holds that file in larger pieces, which a page fault maps whole.
func installed(tb testing.TB, src string) string {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(tb.TempDir(), filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
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
// gantry's and true's wall time per run (mean, median and fastest) and the
// ratio of the means; after the timed loop, up to 20 interleaved runs of
// each give the largest max RSS (through time(1)) and the package
// initialisation time summed from GODEBUG=inittrace=1 (mean and smallest),
// with the number of packages that have init work. With
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
	base := baselineBinary(b)
	runOnce(b, bin, "version") // page cache warm for all
	runOnce(b, truePath)
	if base != "" {
		runOnce(b, base, "version")
	}
	var gantryTime, trueTime, baseTime series
	b.ResetTimer()
	for b.Loop() {
		gantryTime.add(runOnce(b, bin, "version"))
		trueTime.add(runOnce(b, truePath))
		if base != "" {
			baseTime.add(runOnce(b, base, "version"))
		}
	}
	b.StopTimer()
	n := b.N
	runs := min(n, 20)
	gantryInit, trueInit, baseInit := newStartFigures(), newStartFigures(), newStartFigures()
	for range runs { // interleaved, so a busy moment hits both binaries
		gantryInit.add(b, bin)
		trueInit.rss = max(trueInit.rss, maxRSS(b, truePath))
		if base != "" {
			baseInit.add(b, base)
		}
	}
	b.ReportMetric(0, "ns/op")
	gantryTime.report(b, "gantry")
	trueTime.report(b, "true")
	b.ReportMetric(float64(gantryTime.sum)/float64(trueTime.sum), "x-true")
	b.ReportMetric(float64(trueInit.rss)/1024, "true-maxrss-MiB")
	gantryInit.report(b, "", runs)
	if base == "" {
		return
	}
	baseTime.report(b, "base")
	baseInit.report(b, "base-", runs)
}

// series is the wall times of one thing measured again and again; on a
// busy machine its median and its fastest say more than its mean.
type series struct {
	ds  []time.Duration
	sum time.Duration
}

func (s *series) add(d time.Duration) { s.ds, s.sum = append(s.ds, d), s.sum+d }

// report gives name-ms (mean), name-p50-ms and name-min-ms.
func (s *series) report(b *testing.B, name string) {
	if len(s.ds) == 0 {
		return
	}
	sorted := slices.Sorted(slices.Values(s.ds))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(s.sum)/float64(len(s.ds)), name+"-ms")
	b.ReportMetric(ms(sorted[len(sorted)/2]), name+"-p50-ms")
	b.ReportMetric(ms(sorted[0]), name+"-min-ms")
}

// startFigures gathers a binary's package initialisation and max RSS over
// several runs of `version`.
type startFigures struct {
	sum, min float64 // summed init per run: total over the runs, and the smallest
	pkgs     int
	rss      int64
}

func newStartFigures() *startFigures { return &startFigures{min: 1e9} }

func (f *startFigures) add(b *testing.B, bin string) {
	ms, k := initTime(b, bin)
	f.sum, f.min, f.pkgs = f.sum+ms, min(f.min, ms), k
	f.rss = max(f.rss, maxRSS(b, bin, "version"))
}

// report gives the mean and the smallest summed init (the smallest is the
// figure least disturbed by other work on the machine), the packages with
// init work and the largest max RSS.
func (f *startFigures) report(b *testing.B, prefix string, runs int) {
	name := "gantry-"
	if prefix != "" {
		name = prefix
	}
	b.ReportMetric(float64(f.rss)/1024, name+"maxrss-MiB")
	b.ReportMetric(f.sum/float64(runs), prefix+"init-ms")
	b.ReportMetric(f.min, prefix+"init-min-ms")
	b.ReportMetric(float64(f.pkgs), prefix+"init-pkgs")
}

// pollPause is the pause between two polls of the router for the release
// it serves: 0.1 ms more at most on a rollback's time to traffic. Polled
// without a pause, the router and this poller kept one of the machine's
// two cores busy while the CLI and the server measured shared the other
// (the shell's median was about 2 ms slower).
const pollPause = 100 * time.Microsecond

// BenchmarkRollbackFromShell measures `gantry rollback test` as a user types
// it: from the exec of the binary to the first response of the old release
// through the router (polled every pollPause), then to the CLI's exit. The
// server is that binary's `gantry server` in its own process (its router
// in-process, the sample app's 1.0.0 and 1.1.0 running on the two slots as
// real processes); each iteration flips the environment back and forth.
// Beside it, in the same loop: api, the same rollback from the server's Go
// client in this process over the same unix socket to the first response of
// the old release (the server-side cost, with no process start); server, the
// rollback's own time in the journal (its deployment record, created to
// finished) of each shell run. With GANTRY_START_BASELINE=<another gantry
// binary>, that binary's server and CLI do the same in the same loop
// (base-*): a before/after of the CLI and the server in one run.
//
//	go test ./cmd/gantry -run '^$' -bench RollbackFromShell -benchtime 40x
func BenchmarkRollbackFromShell(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not on PATH")
	}
	now := startBinServer(b, buildBinary(b))
	var old *binServer
	if base := baselineBinary(b); base != "" {
		old = startBinServer(b, base)
	}
	other := map[string]string{"1.1.0": "1.0.0", "1.0.0": "1.1.0"}
	// flip runs one rollback on srv and returns the time to traffic on the
	// other release and to the rollback's return.
	flip := func(srv *binServer, rollback func() error) (traffic, done time.Duration) {
		target := other[srv.serving]
		begin := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- rollback() }()
		for {
			if v, err := getVersion(srv.routerURL, "test.hello.localhost"); err == nil && v == target {
				break
			}
			if time.Since(begin) > time.Minute {
				b.Fatalf("no traffic on %s a minute after the rollback", target)
			}
			time.Sleep(pollPause)
		}
		traffic = time.Since(begin)
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		srv.serving = target
		return traffic, time.Since(begin)
	}
	shell := func(srv *binServer) func() error {
		return func() error {
			if out, err := srv.command("rollback", "test", "--app", "hello").CombinedOutput(); err != nil {
				return fmt.Errorf("%s rollback: %v\n%s", srv.bin, err, out)
			}
			return nil
		}
	}
	// One of each first: page cache and connections warm for all.
	for _, srv := range []*binServer{now, old} {
		if srv != nil {
			flip(srv, shell(srv))
			flip(srv, srv.rollbackByAPI)
		}
	}
	// figures are one server's: its CLI's rollbacks to traffic and to
	// exit, their time in its journal, and its Go client's to traffic.
	type figures struct{ traffic, exit, journal, api series }
	round := func(srv *binServer, f *figures) {
		t, d := flip(srv, shell(srv))
		f.traffic.add(t)
		f.exit.add(d)
		b.StopTimer()
		f.journal.add(srv.journalTime(b))
		b.StartTimer()
		t, _ = flip(srv, srv.rollbackByAPI)
		f.api.add(t)
	}
	var cur, base figures
	b.ResetTimer()
	for b.Loop() {
		round(now, &cur)
		if old != nil {
			round(old, &base)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// The journal of the last rollback, step by step (with -v).
	ctx := context.Background()
	if ds, err := now.client.ListDeployments(ctx, "hello", "test", 1, 0); err == nil && len(ds) > 0 {
		if d, err := now.client.FindDeployment(ctx, "hello", ds[0].ID); err == nil {
			for _, st := range d.Steps {
				b.Logf("rollback #%d +%6.2f ms %-20s %s %6.2f ms", d.ID, ms(st.StartedAt.Sub(d.CreatedAt)), st.Name, st.State, ms(st.EndedAt.Sub(st.StartedAt)))
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	cur.traffic.report(b, "shell-traffic")
	cur.exit.report(b, "shell-exit")
	cur.journal.report(b, "server-journal")
	cur.api.report(b, "api-traffic")
	if old != nil {
		base.traffic.report(b, "base-traffic")
		base.exit.report(b, "base-exit")
		base.journal.report(b, "base-server-journal")
		base.api.report(b, "base-api-traffic")
	}
}
