package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// docSetup is what a document needs beyond gantry, git and go, once started.
type docSetup struct {
	ports      map[string]string // documented port → the port it is served on
	dockerHost string            // the Docker Engine for DOCKER_HOST
}

// docNeeds holds, per document, what starts its dependencies: each skips the
// document (with GANTRY_INTEGRATION=1, fails it) when this machine lacks them,
// and stops what it started when the test ends.
var docNeeds = map[string]func(*testing.T) *docSetup{
	"README":           needCurl,
	"w1-deployment":    needCurl,
	"w2-migration":     needCurl,
	"w3-staged-ab":     needCurl,
	"init-and-metrics": needCurl,
	// curl and openssl send what a forge would, signed as it signs.
	"triggers": func(t *testing.T) *docSetup { needDocTools(t, "curl", "openssl", "jq"); return &docSetup{} },
	// A stand-in for the CDN's purge API, written in Python.
	"w6-hotfix": func(t *testing.T) *docSetup { needDocTools(t, "curl", "python3"); return &docSetup{} },
	// A PostgreSQL on 127.0.0.1:5432 with an empty database hello_test.
	"w4-blue-green-database": func(t *testing.T) *docSetup {
		needDocTools(t, "curl")
		pg := pgtest.Start(t)
		pg.CreateDB(t, "hello_test")
		return &docSetup{ports: map[string]string{"5432": strconv.Itoa(pg.Port)}}
	},
	// A Docker Engine, and a registry on 127.0.0.1:5000.
	"w5-microservices": func(t *testing.T) *docSetup {
		needDocTools(t, "curl")
		if err := dockertest.Usable(); err != nil {
			if os.Getenv(dockertest.IntegrationEnv) == "1" {
				t.Fatalf("docker: %v (and %s=1)", err, dockertest.IntegrationEnv)
			}
			t.Skipf("docker: %v", err)
		}
		env, err := dockertest.Start(1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := env.Close(); err != nil {
				t.Errorf("stop docker: %v", err)
			}
		})
		_, port, _ := strings.Cut(env.Registries[0].Addr, ":")
		return &docSetup{ports: map[string]string{"5000": port}, dockerHost: env.Engine.Host}
	},
}

func needCurl(t *testing.T) *docSetup { needDocTools(t, "curl"); return &docSetup{} }

// needDocTools skips (or, with GANTRY_INTEGRATION=1, fails) when a program
// a document runs is not on PATH.
func needDocTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GANTRY_INTEGRATION") == "1" {
				t.Fatalf("%s is required (GANTRY_INTEGRATION=1)", tool)
			}
			t.Skipf("%s not on PATH", tool)
		}
	}
}
