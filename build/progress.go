package build

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// progress writes a build's step lines to the requester as they happen.
type progress struct {
	w io.Writer
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: &lockedWriter{w: w}}
}

func (p *progress) stepf(format string, args ...any) {
	fmt.Fprintf(p.w, "==> "+format+"\n", args...)
}

// lockedWriter serializes writes: a build command's stdout and stderr, and
// the step lines, all end up on one stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// lineWriter prefixes each line of a command's output with the service name
// on its way to the progress stream, and keeps the last lines for an error
// message. A failing progress writer (a client that went away) does not
// fail the build.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
	tail    []string
	keep    int
}

func newLineWriter(w io.Writer, prefix string, keep int) *lineWriter {
	return &lineWriter{w: w, prefix: prefix, keep: keep}
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			// Bound a line that never ends (a progress bar using \r).
			if len(l.partial) > 64<<10 {
				l.line(l.partial)
				l.partial = l.partial[:0]
			}
			break
		}
		l.partial = append(l.partial, b[:i]...)
		l.line(l.partial)
		l.partial = l.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineWriter) line(b []byte) {
	s := strings.TrimRight(string(b), "\r")
	_, _ = io.WriteString(l.w, l.prefix+s+"\n")
	l.tail = append(l.tail, s)
	if len(l.tail) > l.keep {
		l.tail = l.tail[len(l.tail)-l.keep:]
	}
}

// Flush writes an unterminated last line.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.line(l.partial)
		l.partial = l.partial[:0]
	}
}

// Tail returns the last lines written, joined.
func (l *lineWriter) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}
