// Command testapp is the instance that the driver test suite runs on every
// driver: a small HTTP server on 127.0.0.1:$PORT (or -listen) that shows
// what its environment holds and can be made slow, deaf to SIGTERM, chatty,
// or to exit. It is built by tests only and must never be part of a release
// of Gantry.
//
// Endpoints: /up (200), / ("release=… slot=…"), /id (a token drawn at
// start, to tell one process from another), /env?name=X, /slow?d=1s
// (headers at once, the body after d), /log?line=X (prints X to stdout),
// /spam?n=N&size=S (prints N numbered lines of S bytes), /exit?code=N,
// /file?dir=D&name=N (POST stores the body as N in the persistent
// directory $GANTRY_PERSIST_<D>, GET reads it back).
//
// It listens on -listen, else $TESTAPP_LISTEN (for runtimes whose port
// mapping needs another interface), else 127.0.0.1:$PORT.
// With TESTAPP_IGNORE_SIGTERM=1 (or -ignore-sigterm) it ignores SIGTERM;
// otherwise SIGTERM stops it once in-flight requests are done.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", os.Getenv("TESTAPP_LISTEN"), "address to listen on (default $TESTAPP_LISTEN, else 127.0.0.1:$PORT)")
	ignoreTerm := flag.Bool("ignore-sigterm", os.Getenv("TESTAPP_IGNORE_SIGTERM") == "1", "ignore SIGTERM")
	flag.Parse()
	addr := *listen
	if addr == "" {
		addr = "127.0.0.1:" + os.Getenv("PORT")
	}
	var out sync.Mutex // whole lines on stdout, even under concurrent requests
	println := func(s string) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintln(os.Stdout, s)
	}

	var idb [8]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])

	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "release=%s slot=%s\n", os.Getenv("GANTRY_RELEASE"), os.Getenv("GANTRY_SLOT"))
	})
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, id) })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		dir := os.Getenv("GANTRY_PERSIST_" + strings.ToUpper(r.URL.Query().Get("dir")))
		name := filepath.Base(r.URL.Query().Get("name"))
		if dir == "" || name == "." || name == "/" {
			http.Error(w, "no such persistent directory or name", http.StatusBadRequest)
			return
		}
		path := filepath.Join(dir, name)
		if r.Method != http.MethodPost {
			http.ServeFile(w, r, path)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err == nil {
			if err = os.WriteFile(path+".tmp", b, 0o644); err == nil {
				err = os.Rename(path+".tmp", path)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(d)
		fmt.Fprint(w, "slow done")
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		println(r.URL.Query().Get("line"))
	})
	mux.HandleFunc("/spam", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		prefix := r.URL.Query().Get("prefix")
		for i := range n {
			line := fmt.Sprintf("%s%06d ", prefix, i)
			if pad := size - len(line) - 1; pad > 0 {
				line += strings.Repeat("x", pad)
			}
			println(line)
		}
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.Header().Set("Content-Length", "3")
		fmt.Fprint(w, "bye")
		w.(http.Flusher).Flush()
		println("exiting with code " + strconv.Itoa(code))
		os.Exit(code)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	shutdown := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM && *ignoreTerm {
				println("testapp: ignoring SIGTERM")
				continue
			}
			println("testapp: " + sig.String() + ", finishing in-flight requests")
			srv.Shutdown(context.Background())
			close(shutdown)
			return
		}
	}()
	println("testapp " + id + " listening on " + ln.Addr().String())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
	// Serve returns as soon as Shutdown starts; Shutdown returns once the
	// in-flight requests are done.
	<-shutdown
	println("testapp: stopped")
}
