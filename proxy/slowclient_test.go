package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gantry-dev/gantry/internal/httplimit"
)

// testLimits are small so that the test is short: a body must deliver
// 2 KiB in every 2 s, an idle connection lasts 2 s.
var testLimits = httplimit.Limits{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second, BodyMinRate: 1024}

// closeBound is how long after its last byte a slow connection may stay
// open: one period, plus slack for a loaded machine.
const closeBound = 2*time.Second + 1500*time.Millisecond

// TestSlowClientsAreClosed: 20 connections that drip a request body at
// 1 byte/s through the router, and one idle keep-alive connection, are all
// closed by the router within the configured bound (issue 12, fact 7).
func TestSlowClientsAreClosed(t *testing.T) {
	b := MustBackend(t, "blue")
	r, front := MustRouterWithin(t, Config{}, testLimits)
	MustDeploy(t, r, fastRoute("app", "app.test"), b.addr())
	addr := front.Listener.Addr().String()

	lifetimes := dripClients(t, addr, "app.test", "/", 20, 8*time.Second)
	open := 0
	var longest time.Duration
	for _, d := range lifetimes {
		longest = max(longest, d)
		if d > closeBound {
			open++
		}
	}
	t.Logf("20 dripping connections: longest lived %s (bound %s)", longest.Round(10*time.Millisecond), closeBound)
	if open > 0 {
		t.Errorf("%d of 20 dripping connections were open longer than %s", open, closeBound)
	}

	// An idle keep-alive connection is closed after IdleTimeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(8 * time.Second))
	_, err = br.ReadByte()
	if idle := time.Since(start); err == nil || idle > closeBound {
		t.Errorf("idle keep-alive connection: closed after %s (%v), want within %s", idle, err, closeBound)
	}
}

// dripClients opens n connections to addr that send a request's headers at
// once and then its body one byte a second (half of them claiming an
// upgrade), and returns how long each
// stayed open (wait at most): until the server closed it.
func dripClients(tb testing.TB, addr, host, path string, n int, wait time.Duration) []time.Duration {
	tb.Helper()
	lifetimes := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			start := time.Now()
			stop := make(chan struct{})
			defer close(stop)
			// Every other one claims an upgrade, which must not let it out
			// of the limit.
			upgrade := ""
			if i%2 == 1 {
				upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", path, host, upgrade)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			// Whatever the server answers, the connection counts as open
			// until the server closes it.
			c.SetReadDeadline(start.Add(wait))
			_, _ = io.Copy(io.Discard, c)
			lifetimes[i] = time.Since(start)
		}()
	}
	wg.Wait()
	return lifetimes
}

// TestLongConnectionsOutliveTheLimits: with the same small limits, a
// streamed response, a request whose small body is followed by a long
// streamed response, an upload that keeps moving and a WebSocket that
// stays quiet longer than the idle timeout all work for twice the bound.
func TestLongConnectionsOutliveTheLimits(t *testing.T) {
	b := MustBackend(t, "blue")
	r, front := MustRouterWithin(t, Config{}, testLimits)
	MustDeploy(t, r, fastRoute("app", "app.test"), b.addr())
	url := front.URL

	var wg sync.WaitGroup
	check := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := f(); err != nil {
				t.Errorf("%s: %v after %s", name, err, time.Since(start).Round(time.Millisecond))
			} else if d := time.Since(start); d < 4*time.Second {
				t.Errorf("%s lasted only %s: it does not test the limits", name, d)
			}
		}()
	}
	sse := func(method string, body io.Reader) error {
		req, _ := http.NewRequest(method, url+"/sse?n=9&gap=500", body)
		req.Host = "app.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if n := strings.Count(string(got), "data: "); n != 9 {
			return fmt.Errorf("got %d of 9 events", n)
		}
		return nil
	}
	check("streamed response", func() error { return sse(http.MethodGet, nil) })
	check("small body, then a streamed response", func() error { return sse(http.MethodPost, strings.NewReader(`{"hello":1}`)) })
	check("upload at 16 KiB/s", func() error {
		pr, pw := io.Pipe()
		go func() {
			chunk := make([]byte, 4096)
			for i := 0; i < 18; i++ {
				time.Sleep(250 * time.Millisecond)
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, url+"/", pr)
		req.Host = "app.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(got) != "blue" {
			return fmt.Errorf("status %d %q", resp.StatusCode, got)
		}
		return nil
	})
	check("WebSocket quiet for 3 s", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{Host: "app.test"})
		if err != nil {
			return err
		}
		defer c.CloseNow()
		for i := range 3 {
			if i > 0 {
				time.Sleep(2 * time.Second)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				return err
			}
			if _, msg, err := c.Read(ctx); err != nil || string(msg) != "blue:ping" {
				return fmt.Errorf("message %d: %q %v", i, msg, err)
			}
		}
		return c.Close(websocket.StatusNormalClosure, "")
	})
	wg.Wait()
}
