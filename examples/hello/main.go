// Command hello is Gantry's sample app: a web page showing which version,
// slot and release answered, a health endpoint, and a graceful stop on
// SIGTERM, which is all a blue-green switch needs from an app.
//
// The demo builds it in a git repository of its own, where it is a module
// (the demo writes its go.mod), so it must use the standard library only,
// and it listens on 127.0.0.1 only.
package main

import (
	"context"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello from Gantry</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem;background:{{.Color}}}
dt{font-weight:bold}dd{margin:0 0 .6rem 0;font-family:monospace}</style></head>
<body>
<h1>Hello from Gantry</h1>
<dl>
<dt>version</dt><dd id="version">{{.Version}}</dd>
<dt>environment</dt><dd id="env">{{.Env}}</dd>
<dt>slot</dt><dd id="slot">{{.Slot}}</dd>
<dt>release</dt><dd id="release">{{.Release}}</dd>
<dt>database schema</dt><dd id="schema">{{.Schema}}</dd>
<dt>instance</dt><dd id="instance">{{.Instance}} (pid {{.PID}})</dd>
</dl>
</body>
</html>
`))

type info struct {
	Version, Env, Slot, Release, Instance, Schema, Color string
	PID                                                  int
}

// version prefers GANTRY_VERSION, which the deployment sets, and falls back
// to the VERSION file shipped in the artifact beside bin/.
func version() string {
	if v := os.Getenv("GANTRY_VERSION"); v != "" {
		return v
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe), filepath.Dir(filepath.Dir(exe)))
	}
	dirs = append(dirs, ".")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "VERSION")); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return "unknown"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// faults are what a release of the sample may be told to do wrong, to show
// a canary judged: HELLO_DELAY_MS delays every page, HELLO_ERROR_PERCENT
// answers that many pages in a hundred with a 500 (spread evenly and
// deterministically, so a test knows what to expect).
type faults struct {
	delay   time.Duration
	percent uint64
	n       atomic.Uint64
}

func faultsFromEnv() *faults {
	f := &faults{}
	if ms, err := strconv.Atoi(os.Getenv("HELLO_DELAY_MS")); err == nil && ms > 0 {
		f.delay = time.Duration(ms) * time.Millisecond
	}
	if p, err := strconv.Atoi(os.Getenv("HELLO_ERROR_PERCENT")); err == nil && p > 0 && p <= 100 {
		f.percent = uint64(p)
	}
	return f
}

// inject delays the page and says whether it must fail.
func (f *faults) inject() bool {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.percent == 0 {
		return false
	}
	// Spread evenly: page n fails when n·percent/100 passes a whole number.
	n := f.n.Add(1)
	return n*f.percent/100 != (n-1)*f.percent/100
}

func handler(in info) http.Handler {
	mux := http.NewServeMux()
	fs := faultsFromEnv()
	mux.HandleFunc("GET /up", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// HELLO_BROKEN=1 makes a release that passes its health check and
		// fails its users, to show Gantry's watch after a switch roll it back.
		if os.Getenv("HELLO_BROKEN") == "1" {
			http.Error(w, "this release is broken on purpose (HELLO_BROKEN=1)", http.StatusInternalServerError)
			return
		}
		if fs.inject() {
			http.Error(w, "injected error (HELLO_ERROR_PERCENT)", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, in); err != nil {
			log.Printf("render: %v", err)
		}
	})
	return mux
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	in := info{
		Version:  version(),
		Env:      orDash(os.Getenv("GANTRY_ENV")),
		Slot:     orDash(os.Getenv("GANTRY_SLOT")),
		Release:  orDash(os.Getenv("GANTRY_RELEASE")),
		Schema:   orDash(os.Getenv("GANTRY_DB_SCHEMA")),
		Instance: orDash(os.Getenv("GANTRY_INSTANCE")),
		PID:      os.Getpid(),
		Color:    "#f4f7fb",
	}
	if in.Slot == "green" {
		in.Color = "#eef8ee"
	}
	// HOST is where Gantry's driver says to listen: 127.0.0.1 for a local
	// instance, the host's address when routers on other hosts reach it.
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           handler(in),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("hello %s listening on %s (slot %s)", in.Version, ln.Addr(), in.Slot)

	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	// Finish in-flight requests: the router has already stopped sending new
	// ones by the time Gantry stops an old slot.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Printf("shutdown: %v", err) // requests still running at the deadline were cut
	}
	log.Printf("hello %s stopped", in.Version)
}
