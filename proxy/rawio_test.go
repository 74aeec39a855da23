package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func rawIOOf(t *testing.T, c *net.TCPConn) *rawIO {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := &rawIO{}
	r.init(raw)
	return r
}

// TestRawIOAsConn: the raw reads and writes end as the connection's own
// would: a deadline is a timeout named "read", a peer's close is io.EOF, a
// reset is what closedByPeer knows; and a read and a write run at once.
func TestRawIOAsConn(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		c, _ := tcpPair(t)
		r := rawIOOf(t, c)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := r.read(c, make([]byte, 10))
		if !isTimeout(err) || !strings.HasPrefix(err.Error(), "read tcp ") {
			t.Fatalf("read past its deadline: %v, want a timeout of a read", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		c, s := tcpPair(t)
		r := rawIOOf(t, c)
		if _, err := s.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		buf := make([]byte, 10)
		n, err := r.read(c, buf)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("read %q, %v; want hello", buf[:n], err)
		}
		if _, err := r.read(c, buf); err != io.EOF {
			t.Fatalf("read after the peer closed: %v, want io.EOF", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, s := tcpPair(t)
		r := rawIOOf(t, c)
		_ = s.SetLinger(0)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		_, rerr := r.read(c, make([]byte, 10))
		if !closedByPeer(rerr) || !errors.Is(rerr, syscall.ECONNRESET) {
			t.Fatalf("read after a reset: %v, want ECONNRESET", rerr)
		}
		var werr error
		for range 3 { // the first write may still be taken
			if _, werr = r.write(c, []byte("x")); werr != nil {
				break
			}
		}
		if !closedByPeer(werr) {
			t.Fatalf("write after a reset: %v, want the peer's close", werr)
		}
	})
	t.Run("read and write at once", func(t *testing.T) {
		c, s := tcpPair(t)
		r := rawIOOf(t, c)
		const size = 4 << 20 // more than the sockets hold: both sides wait
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the peer echoes
			defer wg.Done()
			_, _ = io.CopyN(s, s, size)
		}()
		var got int
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for got < size {
				n, err := r.read(c, buf)
				if err != nil {
					t.Errorf("read after %d bytes: %v", got, err)
					return
				}
				got += n
			}
		}()
		out := make([]byte, size)
		if n, err := r.write(c, out); n != size || err != nil {
			t.Errorf("wrote %d of %d: %v", n, size, err)
		}
		wg.Wait()
		if got != size {
			t.Errorf("read %d of %d", got, size)
		}
	})
}
