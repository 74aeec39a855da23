package process

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
)

func TestTailOffset(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 1, ""},
		{"a\nb\nc\n", 0, "a\nb\nc\n"},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 9, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n\n\n", 2, "\n\n"},
		{"\n", 1, "\n"},
		{"only", 1, "only"},
	} {
		off, err := tailOffset(strings.NewReader(tt.in), int64(len(tt.in)), tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := tt.in[off:]; got != tt.want {
			t.Errorf("tail %d of %q: got %q, want %q", tt.n, tt.in, got, tt.want)
		}
	}
}

// TestTailOffsetAcrossChunks checks lines that straddle the 32 KiB reads.
func TestTailOffsetAcrossChunks(t *testing.T) {
	var b bytes.Buffer
	long := strings.Repeat("x", 50<<10)
	b.WriteString("first\n" + long + "\nshort\n" + long + "\n")
	in := b.String()
	for _, tt := range []struct {
		n    int
		want string
	}{
		{1, long + "\n"},
		{2, "short\n" + long + "\n"},
		{3, long + "\nshort\n" + long + "\n"},
		{4, in},
	} {
		off, err := tailOffset(strings.NewReader(in), int64(len(in)), tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := in[off:]; got != tt.want {
			t.Errorf("tail %d: got %d bytes, want %d", tt.n, len(got), len(tt.want))
		}
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (we(ird) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.Pgrp != 4242 || st.StartTime != 987654 {
		t.Errorf("parseStat: got %+v, want state S, pgrp 4242, start time 987654", st)
	}
	if _, err := parseStat([]byte("12 (x) S 1 2")); err == nil {
		t.Error("parseStat of a short line: want an error")
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := readStat(syscall.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.StartTime == 0 || st.zombie() {
		t.Errorf("readStat(self): got %+v", st)
	}
	if st.Pgrp != syscall.Getpgrp() {
		t.Errorf("readStat(self) pgrp: got %d, want %d", st.Pgrp, syscall.Getpgrp())
	}
}

func TestParseSignal(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"", syscall.SIGTERM, true},
		{"SIGTERM", syscall.SIGTERM, true},
		{"SIGINT", syscall.SIGINT, true},
		{"SIGQUIT", syscall.SIGQUIT, true},
		{"quit", syscall.SIGQUIT, true},
		{" sigusr1 ", syscall.SIGUSR1, true},
		{"SIGBOGUS", 0, false},
		{"9", 0, false},
	} {
		got, err := parseSignal(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSignal(%q): got %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestShellCommand(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"bin/web", "exec bin/web"},
		{"  bin/web --log-level info ", "exec bin/web --log-level info"},
		{"bin/web --port $PORT", "exec bin/web --port $PORT"},
		{"bin/web > out.log", "exec bin/web > out.log"},
		{"exec bin/web", "exec bin/web"},
		{"./migrate && bin/web", "./migrate && bin/web"},
		{"a; b", "a; b"},
		{"a | b", "a | b"},
		{"FOO=1 bin/web", "FOO=1 bin/web"},
		{"if true; then bin/web; fi", "if true; then bin/web; fi"},
		{"bin/web 2>&1", "bin/web 2>&1"},
	} {
		if got := shellCommand(tt.in); got != tt.want {
			t.Errorf("shellCommand(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
