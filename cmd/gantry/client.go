package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"
)

// client returns an API client for --server, $GANTRY_SERVER, the local
// server's socket ./.gantry/gantry.sock, or the default address; with
// --token or $GANTRY_TOKEN. Who the client is, the server decides from the
// token (or, on its socket, from the OS user).
func (m *Main) client() *api.Client {
	url := m.Server
	if url == "" {
		url = m.Getenv("GANTRY_SERVER")
	}
	if url == "" {
		if fi, err := os.Stat(defaultSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if abs, err := filepath.Abs(defaultSocket); err == nil {
				url = "unix://" + abs
			}
		}
	}
	if url == "" {
		url = "http://127.0.0.1:7878"
	}
	token := m.Token
	if token == "" {
		token = m.Getenv("GANTRY_TOKEN")
	}
	return api.NewClient(url, token)
}

// defaultSocket is where `gantry server` with its default --data listens.
var defaultSocket = filepath.Join(defaultDataDir, socketName)

// localApp is --app, else the app of the gantry.yml in the current
// directory, else "".
func (m *Main) localApp() string {
	if m.App != "" {
		return m.App
	}
	b, err := os.ReadFile("gantry.yml")
	if err != nil {
		return ""
	}
	var head struct {
		App string `yaml:"app"`
	}
	if yaml.Unmarshal(b, &head) != nil {
		return ""
	}
	return head.App
}

// appName picks the app: --app, else the gantry.yml in the current
// directory, else the only app on the server.
func (m *Main) appName(ctx context.Context, c *api.Client) (string, error) {
	if app := m.localApp(); app != "" {
		return app, nil
	}
	apps, err := c.ListApps(ctx)
	if err != nil {
		return "", err
	}
	switch len(apps) {
	case 0:
		return "", gantry.Errorf(gantry.EINVALID, "no app is registered: run `gantry app add NAME --repo PATH` first")
	case 1:
		return apps[0].Name, nil
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name
	}
	return "", usagef("several apps are registered (%s): choose one with --app", strings.Join(names, ", "))
}

// progress prints events as they happen, with elapsed time; on a terminal
// a spinner shows that a long step is still running.
type progress struct {
	w       io.Writer
	tty     bool
	quiet   bool
	stop    chan struct{}
	exited  chan struct{}
	current string
	started time.Time
}

func (m *Main) newProgress() *progress {
	p := &progress{w: m.Stderr, quiet: m.JSON}
	if f, ok := m.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) event(ev gantry.Event) {
	if p.quiet {
		return
	}
	p.clearSpinner()
	label := ev.Step
	if label == "" {
		label = ev.State
	}
	msg := ev.Message
	if ev.Step != "" && ev.State != "" && ev.State != gantry.StepStarted {
		label += " " + ev.State
	}
	fmt.Fprintf(p.w, "[%6.1fs] %-22s %s\n", ev.Elapsed.Seconds(), label, msg)
	if p.tty && ev.State == gantry.StepStarted {
		p.spin(ev.Step)
	}
}

func (p *progress) spin(step string) {
	p.current, p.started = step, time.Now()
	p.stop, p.exited = make(chan struct{}), make(chan struct{})
	stop, exited := p.stop, p.exited
	go func() {
		defer close(exited)
		frames := `|/-\`
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r%c %s %.1fs ", frames[i%4], step, time.Since(p.started).Seconds())
			}
		}
	}()
}

func (p *progress) clearSpinner() {
	if p.stop != nil {
		close(p.stop)
		<-p.exited
		p.stop = nil
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) done() { p.clearSpinner() }
