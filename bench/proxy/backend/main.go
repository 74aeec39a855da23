// Command backend is the upstream of the router benchmark (bench/proxy):
// the smallest useful HTTP server, so that what the benchmark measures is
// the proxy in front of it. It is a benchmark tool and must not be used by
// anything else.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19000", "address to serve on")
	flag.Parse()
	body := []byte("hello from the benchmark backend\n")
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}),
	}
	log.Fatal(srv.ListenAndServe())
}
