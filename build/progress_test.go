package build

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	lw := newLineWriter(&out, "web | ", 3)
	// Writes split lines anywhere; CRLF endings are trimmed.
	for _, chunk := range []string{"one\ntw", "o\r\nthree\n", "four\nfi", "ve"} {
		if n, err := lw.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	lw.Flush()
	want := "web | one\nweb | two\nweb | three\nweb | four\nweb | five\n"
	if out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
	if got, want := lw.Tail(), "three\nfour\nfive"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

func TestLineWriterLongLine(t *testing.T) {
	var out bytes.Buffer
	lw := newLineWriter(&out, "", 2)
	long := strings.Repeat("x", 100<<10)
	fmt.Fprint(lw, long)
	if out.Len() == 0 {
		t.Errorf("a 100 KiB line without newline was held back entirely")
	}
	lw.Flush()
	if got := strings.Count(out.String(), "x"); got != len(long) {
		t.Errorf("wrote %d bytes of the line, want %d", got, len(long))
	}
}
