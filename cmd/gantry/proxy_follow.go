package main

import (
	"context"
	"os"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/spf13/cobra"
)

// proxyFollowFlags make `gantry proxy run` a router that follows the
// control plane's route table (a server started with --follow-routers).
type proxyFollowFlags struct {
	servers   []string
	name      string
	tokenFile string
	url       string
}

func addProxyFollowFlags(cmd *cobra.Command, fl *proxyFollowFlags) {
	f := cmd.Flags()
	f.StringArrayVar(&fl.servers, "follow", nil, "follow the routes of the control plane at this server URL (repeatable: each server of the control plane, tried in turn)")
	f.StringVar(&fl.name, "follow-name", "", "the name this router reports under (default the host name)")
	f.StringVar(&fl.tokenFile, "follow-token-file", "", "file holding an API token (role deployer) for --follow; not needed over a unix:// socket")
	f.StringVar(&fl.url, "follow-url", "", "where this router serves traffic, as reported to the control plane (default http://<--listen address>)")
}

func (fl *proxyFollowFlags) check() error {
	if len(fl.servers) == 0 {
		if fl.name != "" || fl.tokenFile != "" || fl.url != "" {
			return usagef("--follow-name, --follow-token-file and --follow-url need --follow")
		}
		return nil
	}
	if fl.name == "" {
		host, err := os.Hostname()
		if err != nil {
			return usagef("--follow-name: %v", err)
		}
		fl.name = strings.Trim(strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			case r >= 'A' && r <= 'Z':
				return r - 'A' + 'a'
			}
			return '-'
		}, host), "-")
	}
	if err := gantry.ValidName("router", fl.name); err != nil {
		return usagef("--follow-name: %v", err)
	}
	return nil
}

// follow starts following the control plane, when --follow says so; the
// returned function stops it. The router keeps its own state file as
// always, so after a restart it serves what it last applied before the
// control plane answers.
func (p *proxyProcess) follow(ctx context.Context) (stop func(), err error) {
	fl := p.flags.follow
	if len(fl.servers) == 0 {
		return func() {}, nil
	}
	token, err := readTokenFile("--follow-token-file", fl.tokenFile)
	if err != nil {
		return nil, err
	}
	srcs := &fleet.Sources{}
	for _, u := range fl.servers {
		srcs.List = append(srcs.List, api.NewClient(u, token))
	}
	url := fl.url
	for _, t := range p.traffic {
		if url == "" && t.name == lnHTTP {
			url = "http://" + t.ln.Addr().String()
		}
	}
	f := &fleet.Follower{Name: fl.name, URL: url, Source: srcs, Local: p.router, Logger: p.log.With("component", "follow")}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
	p.log.Info("following the control plane", "servers", fl.servers, "name", fl.name, "url", url)
	return func() { cancel(); <-done }, nil
}
