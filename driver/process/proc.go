package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/gantry-dev/gantry"
)

// procStat is what the driver reads from /proc/<pid>/stat.
type procStat struct {
	State     byte   // R, S, D, Z, X, …
	Pgrp      int    // field 5
	StartTime uint64 // field 22, clock ticks since boot
}

// zombie reports whether the process has exited and waits to be reaped.
func (s procStat) zombie() bool { return s.State == 'Z' || s.State == 'X' || s.State == 'x' }

// errNoProcess is returned by readStat when /proc has no such pid.
var errNoProcess = errors.New("no such process")

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return procStat{}, errNoProcess
	} else if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat: no command field")
	}
	// After ")" come fields 3 (state), 4 (ppid), 5 (pgrp), … 22 (starttime).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the command", len(f))
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat pgrp: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat starttime: %w", err)
	}
	return procStat{State: f[0][0], Pgrp: pgrp, StartTime: start}, nil
}

// leaderState says what became of the process a handle names.
type leaderState int

const (
	leaderRunning leaderState = iota // same pid and start time, not a zombie
	leaderZombie                     // exited, not reaped yet
	leaderGone                       // no such pid, or the pid was reused
	leaderReused                     // the pid belongs to another process now
)

// leader checks the process by pid and start time, which together name one
// process for the life of the machine: a reused pid has another start time.
func leader(pid int, start uint64) (leaderState, error) {
	st, err := readStat(pid)
	if err == errNoProcess {
		return leaderGone, nil
	} else if err != nil {
		return leaderGone, err
	}
	if st.StartTime != start {
		return leaderReused, nil
	}
	if st.zombie() {
		return leaderZombie, nil
	}
	return leaderRunning, nil
}

// groupAlive reports whether any process of group pgid still runs. Zombies
// do not count: after a kill -9 of the server an orphan may wait for an init
// that does not reap it, and it runs nothing.
func groupAlive(pgid int) (bool, error) {
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return false, nil
	} else if err != nil && err != syscall.EPERM {
		return false, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // exited while we looked
		}
		if st.Pgrp == pgid && !st.zombie() {
			return true, nil
		}
	}
	return false, nil
}

// signals are the names a StopSpec may use, with or without the SIG prefix.
var signals = map[string]syscall.Signal{
	"SIGTERM":  syscall.SIGTERM,
	"SIGINT":   syscall.SIGINT,
	"SIGQUIT":  syscall.SIGQUIT,
	"SIGHUP":   syscall.SIGHUP,
	"SIGUSR1":  syscall.SIGUSR1,
	"SIGUSR2":  syscall.SIGUSR2,
	"SIGWINCH": syscall.SIGWINCH,
	"SIGKILL":  syscall.SIGKILL,
}

// parseSignal maps a StopSpec signal name to a signal; empty is SIGTERM.
func parseSignal(name string) (syscall.Signal, error) {
	if name == "" {
		return syscall.SIGTERM, nil
	}
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if s, ok := signals[n]; ok {
		return s, nil
	}
	return 0, gantry.Errorf(gantry.EINVALID, "unknown stop signal %q (want SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH or SIGKILL)", name)
}
