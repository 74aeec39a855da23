package scaffold

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Render writes d as a gantry.yml, each key with a comment that says what
// it does and what to change.
func Render(d *Detection) []byte {
	var b bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# gantry.yml, proposed by `gantry init` from what it found here:")
	for _, e := range d.Evidence {
		line("#   - %s", e)
	}
	line("# Check it with `gantry manifest check`; docs/manifest.md describes every key.")
	for _, n := range d.Notes {
		line("# Before the first deploy: %s.", n)
	}
	line("")
	line("# The app's name (lowercase letters, digits, dashes): hosts and process names use it.")
	line("app: %s", d.App)
	line("")
	line("# How releases are numbered: --version, else a VERSION file in the commit,")
	line("# else a vX.Y.Z tag on it. (calver numbers them YY.MM.R instead.)")
	line("version:")
	line("  scheme: semver")
	line("")
	line("# One entry per process type. Each release is built once, in a clean export of")
	line("# the commit, and the very same artifact goes to test and then to prod.")
	line("services:")
	for _, s := range d.Services {
		line("  %s:", s.Name)
		switch {
		case s.Docker:
			line("    # Built from the Dockerfile into an image, tagged with the version and the commit.")
			line("    docker: {dockerfile: Dockerfile, context: .}")
		case s.Build != "":
			line("    # Runs in the clean export of the commit; the release keeps only `artifacts`.")
			line("    build:")
			line("      command: %s", quote(s.Build))
			line("      artifacts: [%s]", strings.Join(s.Artifacts, ", "))
		default:
			line("    # No build command: the commit's files are the release, as they are.")
			line("    build: {artifacts: [.]}")
		}
		line("    # Started with PORT set (from %s). A web service must listen on 127.0.0.1:$PORT.", s.RunFrom)
		line("    run: %s", quote(s.Run))
		if s.HTTP {
			line("    # Takes traffic through Gantry's router. A worker says false.")
			line("    http: true")
			line("    instances: 1")
			line("    # Traffic switches only to instances that answer this path with 2xx or 3xx;")
			line("    # a cheap endpoint of its own (/up) is better than the home page.")
			line("    health: {path: /, interval: 1s, timeout: 2s}")
		} else {
			line("    # A worker: no traffic from the router; it counts as ready after staying up for ready_delay.")
			line("    http: false")
			line("    instances: 1")
		}
		line("    # Sent at a switch; in-flight work has this long before SIGKILL.")
		line("    stop: {signal: SIGTERM, timeout: 30s}")
	}
	line("")
	line("# Where the app runs. test takes every deploy; prod takes only a release that ran")
	line("# verified on test (`gantry promote test prod`), byte for byte the same.")
	line("environments:")
	for _, env := range []struct{ name, host, extra string }{
		{"test", "test." + d.App + ".localhost", ""},
		{"prod", d.App + ".localhost", "promote_from: test"},
	} {
		line("  %s:", env.name)
		line("    # Host names the router sends here; add your real ones.")
		line("    hosts: [%s]", env.host)
		switch {
		case d.Driver == "docker" && d.Registry != "":
			line("    # Docker Engine containers, of images pushed to this registry and run by digest.")
			line("    runtime: {driver: docker, registry: %s}", quote(d.Registry))
		case d.Driver == "docker":
			line("    # Docker Engine containers. Gantry pushes the images it builds to a registry and")
			line("    # runs them by digest: add registry: host:port/%s before the first deploy.", d.App)
			line("    runtime: {driver: docker}")
		default:
			line("    # Supervised local processes: nothing else to install.")
			line("    runtime: {driver: %s}", d.Driver)
		}
		line("    # Start the new release beside the old one, then switch; the old one stays")
		line("    # warm for keep_warm, so `gantry rollback %s` is a flip back.", env.name)
		line("    strategy: bluegreen")
		line("    keep_warm: 10m")
		if env.extra != "" {
			line("    # Releases come here only from test.")
			line("    %s", env.extra)
		}
	}
	return b.Bytes()
}

// quote writes s as a YAML double-quoted scalar (JSON's string syntax is
// one), so that no character of a command reads as YAML.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}
