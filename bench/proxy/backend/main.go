// Command backend is the upstream of the router benchmark (bench/proxy):
// the smallest useful HTTP server, so that what the benchmark measures is
// the proxy in front of it. It is a benchmark tool and must not be used by
// anything else.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19000", "address to serve on")
	flag.Parse()
	body := []byte("hello from the benchmark backend\n")
	// /1m answers 1 MiB, for the large-response case; any request body
	// (the upload case) is read to its end before the answer.
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	largeLen := strconv.Itoa(len(large))
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == "/1m" {
				w.Header().Set("Content-Length", largeLen)
				w.Write(large)
				return
			}
			w.Write(body)
		}),
	}
	log.Fatal(srv.ListenAndServe())
}
