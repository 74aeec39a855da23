#!/usr/bin/env bash
# Runs every test of the repository. Installs what the tests need when it is
# missing and this runs as root (Debian packages), and starts throwaway
# instances of services under a temporary directory that it removes at exit.
#
# GANTRY_INTEGRATION=1 (set by .ci/run) turns a missing dependency into a
# failure instead of a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

# need CMD PACKAGE...: install the Debian packages when CMD (a command name
# or an absolute path) is missing.
apt_updated=""
need() {
	local cmd=$1
	shift
	if [ "${cmd#/}" != "$cmd" ]; then
		[ -x "$cmd" ] && return 0
	else
		command -v "$cmd" >/dev/null 2>&1 && return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		log "$cmd is missing (Debian: $*); tests that need it will skip unless GANTRY_INTEGRATION=1"
		return 0
	fi
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		apt-get update -qq >/dev/null
		apt_updated=1
	fi
	log "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need git git
need curl curl
# The Docker driver's tests start a throwaway dockerd and registry.
need dockerd docker.io
need docker-registry docker-registry
# Database changes are tested against a throwaway PostgreSQL 15.
need /usr/lib/postgresql/15/bin/postgres postgresql-15 postgresql-client-15
# The dashboard is tested in a real headless browser.
need chromium chromium
# `gantry init`'s Python sample deploys with pip (its build) and gunicorn (its
# server), both of the host's python3.
need gunicorn gunicorn python3-pip
# The Kubernetes copy of persistent directories runs its scripts with busybox
# (TestCopyScripts), as the copy image does.
need busybox busybox
need /usr/lib/python3/dist-packages/pip python3-pip

if ! command -v go >/dev/null 2>&1; then
	log "go is not on PATH: install Go 1.26 or newer"
	exit 1
fi

# Tests use loopback only; a proxy set in the environment would intercept them.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

# The Kubernetes driver is tested against a real control plane built from the
# Go module proxy: built once into a cache (minutes cold, seconds when cached),
# here, before go test, in every mode, so that the build never runs under a test
# binary's timeout (the tests themselves never build it: without it they skip,
# or fail at once under GANTRY_INTEGRATION=1). It needs go and flock; a build
# that fails is a failure under GANTRY_INTEGRATION=1 and a skip otherwise.
if command -v flock >/dev/null 2>&1; then
	log "kubernetes test cluster: ./scripts/k8s-cluster.sh build (cached after the first run)"
	if ! ./scripts/k8s-cluster.sh build >/dev/null; then
		if [ "${GANTRY_INTEGRATION:-}" = 1 ]; then
			log "kubernetes test cluster: build failed"
			exit 1
		fi
		log "kubernetes test cluster: build failed; its tests will skip"
	fi
else
	log "flock is missing (Debian: util-linux): the kubernetes test cluster is not built; its tests will skip unless GANTRY_INTEGRATION=1"
fi

pkgs=${GANTRY_TEST_PACKAGES:-./...}
log "go test $pkgs"
go test -count=1 -timeout 20m "$@" $pkgs
