package httplimit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWithBodyRateMiddleware: a body below the rate is cut one period
// after it last met its quota, whether the handler reads it or not; a body
// at the rate goes on past the period; a handler answering a small body
// then streaming keeps streaming.
func TestWithBodyRateMiddleware(t *testing.T) {
	limits := Limits{BodyTimeout: time.Second, BodyMinRate: 100}
	mux := http.NewServeMux()
	var readErr = make(chan error, 1)
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		select {
		case readErr <- err:
		default:
		}
		fmt.Fprintf(w, "read %d", n)
	})
	mux.HandleFunc("POST /ignore", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not reading")
	})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for i := range 5 {
			fmt.Fprintf(w, "%d\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = limits.Server(mux)
	srv.Start()
	defer srv.Close()

	for _, path := range []string{"/read", "/ignore"} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", path)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
					c.Write([]byte("x")) // 5 bytes/s, below 100
				}
			}
		}()
		c.SetReadDeadline(start.Add(5 * time.Second))
		io.Copy(io.Discard, c)
		close(done)
		c.Close()
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("%s: a body at 5 bytes/s kept its connection %s, want about 1s", path, d)
		}
	}
	if err := <-readErr; err != ErrBodyTooSlow {
		t.Errorf("the handler read %v, want ErrBodyTooSlow", err)
	}

	// 400 bytes/s for 2.5 s: above the rate, past the period.
	pr, pw := io.Pipe()
	go func() {
		for range 25 {
			time.Sleep(100 * time.Millisecond)
			pw.Write(make([]byte, 40))
		}
		pw.Close()
	}()
	resp, err := http.Post(srv.URL+"/read", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "read 1000" {
		t.Errorf("upload at the rate: %q, want read 1000", b)
	}

	resp, err = http.Post(srv.URL+"/stream", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		lines++
	}
	resp.Body.Close()
	if lines != 5 {
		t.Errorf("streamed response after a small body: %d of 5 lines", lines)
	}
}
