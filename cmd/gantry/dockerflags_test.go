package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServerDockerFlags: an engine or an address given on the command line
// that is malformed stops the server at once, exit 2 naming the flag,
// instead of a server that runs without the docker driver (or hands its
// instances HOST=10.0.0.30:99) until the first deploy fails far from it.
func TestServerDockerFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"--docker-host", "foo", `gantry: --docker-host "foo": `},
		{"--docker-host", "tcp://", `gantry: --docker-host "tcp://": `},
		{"--docker-advertise", "10.0.0.30:2375", `gantry: --docker-advertise "10.0.0.30:2375": want the address of the engine's host`},
		{"--docker-advertise", "tcp://10.0.0.30", `gantry: --docker-advertise "tcp://10.0.0.30": want`},
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			dir := t.TempDir()
			_, errs, code := runCLI(t, "", "server", "--data", filepath.Join(dir, "data"), "--secrets-key", filepath.Join(dir, "keys", "secrets.key"),
				"--listen", "127.0.0.1:0", "--router", "127.0.0.1:0", tc.flag, tc.value)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errs, tc.want)
			}
		})
	}
}

func TestValidAdvertise(t *testing.T) {
	for addr, want := range map[string]bool{
		"10.0.0.30": true, "fd00::30": true, "docker-1.internal": true, "dock": true,
		"10.0.0.30:2375": false, "tcp://dock": false, "dock/": false, "-dock": false, "a..b": false, "": false,
	} {
		if got := validAdvertise(addr); got != want {
			t.Errorf("validAdvertise(%q) = %v, want %v", addr, got, want)
		}
	}
}
