// Command web is the front end of the three-service app of the app model
// scenario (appmodel_test.go): it answers on every path the api does not
// take, calls the api where discovery says it is, and keeps uploads in the
// environment's persistent directory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const version = "web-1"

func main() {
	uploads := os.Getenv("GANTRY_PERSIST_UPLOADS")
	api := os.Getenv("GANTRY_SERVICE_API_URL")
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s\n", version) })
	mux.HandleFunc("/call-api", func(w http.ResponseWriter, r *http.Request) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(api + "/api/hello")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "%s slot=%s via %s: %s", version, os.Getenv("GANTRY_SLOT"), api, b)
	})
	mux.HandleFunc("/files/", func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(strings.TrimPrefix(r.URL.Path, "/files/"))
		path := filepath.Join(uploads, name)
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err == nil {
				tmp := path + ".tmp"
				if err = os.WriteFile(tmp, b, 0o644); err == nil {
					err = os.Rename(tmp, path)
				}
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
			return
		}
		http.ServeFile(w, r, path)
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
