// Package portalloc hands out loopback TCP ports for instances that a
// runtime driver starts and that bind $PORT themselves.
//
// A port taken from the kernel with a listen on port 0 comes from the
// ephemeral range, where any outgoing connection of the machine may take it
// again before the instance binds it. The allocator picks below that range
// instead, skips ports something already listens on, and does not hand the
// same port out twice while an instance may still be starting on it. It
// must not be used for ports Gantry binds itself (those listen on port 0).
package portalloc

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults: the range ends below the kernel's ephemeral range (from 32768
// on a stock Linux), and a port handed out is not handed out again for
// Hold, long enough for any instance to have bound it or failed.
const (
	DefaultLow  = 20000
	DefaultHigh = 32767
	DefaultHold = 10 * time.Minute
)

// Allocator hands out ports in [Low, High]. Its zero value uses the
// defaults, with High lowered below the kernel's ephemeral range when that
// starts lower. It is safe for concurrent use.
type Allocator struct {
	Low, High int
	Hold      time.Duration
	// Now is the clock (default time.Now); Free says whether a port is
	// free to bind (default: try to listen on it).
	Now  func() time.Time
	Free func(port int) bool

	mu     sync.Mutex
	next   int
	handed map[int]time.Time
}

// Take returns a port that nothing listens on and that was not handed out
// within Hold.
func (a *Allocator) Take() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	low, high := a.bounds()
	now := a.now()
	if a.handed == nil {
		a.handed = map[int]time.Time{}
	}
	hold := a.Hold
	if hold <= 0 {
		hold = DefaultHold
	}
	if a.next < low || a.next > high {
		// Start somewhere different in each process, so that two servers
		// on one machine do not probe the same ports in the same order.
		a.next = low + os.Getpid()%(high-low+1)
	}
	for range high - low + 1 {
		p := a.next
		if a.next++; a.next > high {
			a.next = low
		}
		if at, ok := a.handed[p]; ok && now.Sub(at) < hold {
			continue
		}
		if !a.free(p) {
			continue
		}
		a.handed[p] = now
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d", low, high)
}

// Release says an instance on port has stopped: the port may be handed
// out again at once.
func (a *Allocator) Release(port int) {
	a.mu.Lock()
	delete(a.handed, port)
	a.mu.Unlock()
}

func (a *Allocator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Allocator) free(port int) bool {
	if a.Free != nil {
		return a.Free(port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func (a *Allocator) bounds() (int, int) {
	low, high := a.Low, a.High
	if low <= 0 {
		low = DefaultLow
	}
	if high <= 0 {
		high = DefaultHigh
		if eph := ephemeralLow(); eph > 0 && eph-1 < high {
			high = eph - 1
		}
	}
	if high < low {
		high = low
	}
	return low, high
}

// ephemeralLow is where the kernel's ephemeral port range starts, or 0
// when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// Default is the allocator of every driver of one server process, so that
// two runtimes sharing the host's network never get the same port.
var Default = &Allocator{}

// PortOf returns the port of a host:port address, or 0.
func PortOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
