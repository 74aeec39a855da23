package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/httplimit"
)

// cannedBackend answers every request with the same bytes and allocates
// nothing per request, so that a benchmark's allocations are the router's.
// It is an HTTP/1.1 upstream for benchmarks only (it reads heads, never
// bodies).
func cannedBackend(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n\r\nHello from the benchmark backend\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawClient sends one GET at a time on a keep-alive connection and reads
// the sized answer without allocating.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func newRawClient(tb testing.TB, addr, host string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReader(c), req: []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: bench\r\n\r\n"), buf: make([]byte, 4096)}
}

func (rc *rawClient) do() (int, error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, err
	}
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			if len(line) < 12 {
				return 0, fmt.Errorf("bad status line %q", line)
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(v))
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("no Content-Length")
	}
	_, err := io.ReadFull(rc.br, rc.buf[:length])
	return status, err
}

// BenchmarkServer measures a request end to end over a keep-alive
// connection: the client's write, the server side (the router's loop or
// net/http), the router and its upstream pool, to a backend that
// allocates nothing. Allocations per request are the router's and its
// server's. Compare with:
//
//	go test ./proxy -run '^$' -bench 'BenchmarkServer$' -benchmem -count 3 -cpu 1
func BenchmarkServer(b *testing.B) {
	for _, server := range []string{"loop", "net/http"} {
		b.Run("server="+server, func(b *testing.B) {
			r := New(Config{})
			b.Cleanup(func() { r.Close() })
			addr := serveFor(b, server, r)
			MustDeploy(b, r, benchRoute(), cannedBackend(b))
			c := newRawClient(b, addr, "app.localhost")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if code, err := c.do(); err != nil || code != 200 {
					b.Fatalf("got %d, %v", code, err)
				}
			}
		})
	}
}

// benchRoute has health checks that do not run during a benchmark.
func benchRoute() gantry.Route {
	rc := fastRoute("app", "app.localhost")
	rc.Health.Interval = time.Hour
	return rc
}

// serveFor serves h on the named server: the loop or net/http.
func serveFor(tb testing.TB, server string, h http.Handler) string {
	if server == "loop" {
		_, addr := startLoop(tb, h, httplimit.Limits{})
		return addr
	}
	front := httptest.NewUnstartedServer(h)
	front.Config = NewServer(h, httplimit.Limits{})
	front.Start()
	tb.Cleanup(front.Close)
	return front.Listener.Addr().String()
}

// BenchmarkIdleConnMemory reports the memory (heap and stacks of this
// process) each idle keep-alive client connection holds after one
// request, on the loop and on net/http. The client's side of each
// connection (a descriptor and a net.Conn) is in the figure too, the same
// for both.
//
//	go test ./proxy -run '^$' -bench 'BenchmarkIdleConnMemory$' -benchtime 1x
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 1000
	for _, server := range []string{"loop", "net/http"} {
		b.Run("server="+server, func(b *testing.B) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
			addr := serveFor(b, server, h)
			for range b.N {
				before := inUse()
				conns := make([]*rawClient, n)
				for i := range conns {
					conns[i] = newRawClient(b, addr, "a")
					if _, err := conns[i].do(); err != nil {
						b.Fatal(err)
					}
					conns[i].br, conns[i].buf = nil, nil // the client keeps only its conn
				}
				time.Sleep(2 * bufferHold) // idle: the loop's buffers go back
				after := inUse()
				b.ReportMetric(float64(after-before)/n, "B/conn")
				for _, c := range conns {
					c.c.Close()
				}
			}
		})
	}
}

func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
