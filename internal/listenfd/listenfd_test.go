package listenfd

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With childEnv set, the test binary is the child of a handover: it serves
// "child" on every inherited listener, or exits early if told to fail.
const childEnv = "LISTENFD_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

func runChild(mode string) int {
	in, err := Inherit()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if mode == "fail" {
		return 4
	}
	if mode == "hang" {
		select {}
	}
	if os.Getenv(EnvListeners) != "" {
		fmt.Fprintln(os.Stderr, "handover variables still set")
		return 5
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "child") })
	for _, name := range in.Names() {
		l, err := in.Listen(name, "tcp", "127.0.0.1:1")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 6
		}
		go http.Serve(l, h)
	}
	if err := in.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 7
	}
	select {}
}

func childCmd(tb testing.TB, mode string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

func MustStart(tb testing.TB, cmd *exec.Cmd, ls map[string]net.Listener) *Child {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, cmd, ls)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	return c
}

func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestHandoverTCP keeps requesting while the listener moves from this
// process to a child: no request may fail, and the child ends up serving.
func TestHandoverTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "parent") })}
	go srv.Serve(l)
	url := "http://" + l.Addr().String() + "/"

	var failed, ok atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the clients open a connection per request, so that
			// they exercise the accept queue throughout.
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: i%2 == 0}, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(client, url); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	MustStart(t, childCmd(t, "serve"), map[string]net.Listener{"http": l})
	// Closing the parent's listener stops its accepting, not the socket:
	// new connections queue for the child. (Draining the parent's open
	// connections is the caller's business, so they stay open here.)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	defer srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	before := ok.Load()
	for ok.Load() < before+50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("failed requests: got %d, want 0 (first: %v)", n, firstErr.Load())
	}
	if ok.Load() < before+50 {
		t.Errorf("requests after the handover: got %d, want at least 50", ok.Load()-before)
	}
	got, err := get(&http.Client{Transport: &http.Transport{}}, url)
	if err != nil || got != "child" {
		t.Errorf("after handover: got %q, %v; want %q", got, err, "child")
	}
}

func TestHandoverUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, childCmd(t, "serve"), map[string]net.Listener{"admin": l})
	// The parent must leave the socket file to the child.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	got, err := get(client, "http://admin/")
	if err != nil || got != "child" {
		t.Errorf("over the socket: got %q, %v; want %q", got, err, "child")
	}
}

func TestStartChildFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		mode    string
		timeout time.Duration
		want    string
	}{
		{"fail", 30 * time.Second, "exited before it was ready"},
		{"hang", 300 * time.Millisecond, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			c, err := Start(ctx, childCmd(t, tt.mode), map[string]net.Listener{"http": l})
			if err == nil {
				c.Process.Kill()
				t.Fatal("Start: got nil error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.want)
			}
		})
	}
	// The parent's listener still works after failed handovers.
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "parent") }))
	got, err := get(&http.Client{Transport: &http.Transport{}}, "http://"+l.Addr().String())
	if err != nil || got != "parent" {
		t.Errorf("parent after failed handovers: got %q, %v; want %q", got, err, "parent")
	}
}

func TestInheritParse(t *testing.T) {
	tests := []struct {
		list, ready string
		wantErr     string
	}{
		{"", "", ""},
		{"http", "", "bad entry"},
		{"http=x", "", "bad entry"},
		{"http=1", "", "bad entry"},
		{"=5", "", "bad entry"},
		{"", "2", "bad descriptor"},
	}
	for _, tt := range tests {
		in, err := inherit(tt.list, tt.ready)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("inherit(%q, %q): %v", tt.list, tt.ready, err)
			} else if in.Handover() || len(in.Names()) != 0 {
				t.Errorf("inherit(%q, %q): got handover %v names %v, want none", tt.list, tt.ready, in.Handover(), in.Names())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("inherit(%q, %q): got %v, want error containing %q", tt.list, tt.ready, err, tt.wantErr)
		}
	}
}

func TestListenFresh(t *testing.T) {
	in, err := inherit("", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ready(); err != nil {
		t.Errorf("Ready without a parent: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")

	// A socket file left by a process that is gone is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err := in.Listen("admin", "unix", path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()

	// A live one is not.
	if _, err := in.Listen("admin", "unix", path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("Listen over a live socket: got %v, want 'another process listens'", err)
	}
	// Nor is a file that is not a socket.
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	if _, err := in.Listen("admin", "unix", plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a plain file: got %v, want 'not a socket'", err)
	}
}
