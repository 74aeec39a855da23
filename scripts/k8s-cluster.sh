#!/usr/bin/env bash
# k8s-cluster.sh: a throwaway Kubernetes control plane for Gantry's driver tests.
#
#   k8s-cluster.sh build        build etcd, kube-apiserver, kube-controller-manager,
#                               kube-scheduler, kubectl and kwok into the cache (once)
#   k8s-cluster.sh bindir       print the cache's bin directory
#
# Starting and stopping the cluster is done by internal/k8stest (Go), which owns the
# processes and kills them by PID; this script only builds, because the build is the
# slow, cacheable part (about 7 minutes cold, seconds when cached).
#
# Everything comes from the Go module proxy: no container images, no downloads
# from elsewhere. The cache is keyed by the three versions, so bumping one rebuilds.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE_ROOT=${GANTRY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry-k8s}
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
TOP="$CACHE_ROOT/$KEY"
BIN="$TOP/bin"
SRC="$TOP/src"
STAMP="$BIN/.complete"

log() { printf '[k8s-cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# moddir prints the extracted directory of a module version in the module cache.
moddir() {
	go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

build_kubernetes() {
	local src="$SRC/kubernetes" staging_version="v0.${K8S_VERSION#v1.}" d mod name
	d=$(moddir "k8s.io/kubernetes@$K8S_VERSION")
	rm -rf "$src"
	cp -r "$d" "$src"
	chmod -R u+w "$src"
	# The module zip drops staging/src/k8s.io/*: they are nested modules. Each is
	# published on its own as k8s.io/<name>@v0.<minor>.<patch>; put them back.
	mkdir -p "$src/staging/src/k8s.io"
	for mod in $(awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=> \.\/staging/{print $1}' "$src/go.mod"); do
		name=${mod#k8s.io/}
		if d=$(moddir "$mod@$staging_version" 2>/dev/null) && [ -n "$d" ]; then
			cp -r "$d" "$src/staging/src/k8s.io/$name"
		else
			# Example-only modules the binaries never import; a bare go.mod satisfies the replace.
			log "stub $mod (not on the proxy)"
			mkdir -p "$src/staging/src/k8s.io/$name"
			echo "module $mod" >"$src/staging/src/k8s.io/$name/go.mod"
		fi
	done
	chmod -R u+w "$src/staging"
	local minor
	minor=$(echo "$K8S_VERSION" | cut -d. -f2)
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
	log "building kubernetes $K8S_VERSION binaries"
	(cd "$src" && go build -mod=mod -trimpath -ldflags "$ld" -o "$BIN/" \
		./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubectl)
}

build_etcd() {
	# etcd's server module cannot be 'go install'ed (it has replace directives);
	# a one-line main around etcdmain in a module of our own builds fine.
	local src="$SRC/etcd"
	rm -rf "$src"
	mkdir -p "$src"
	cat >"$src/main.go" <<'GO'
// Command etcd is etcd's own entry point, rebuilt so it can come from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
	log "building etcd $ETCD_VERSION"
	(cd "$src" && go mod init gantry.local/etcd >/dev/null 2>&1 &&
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 &&
		go mod tidy >/dev/null 2>&1 &&
		go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .)
}

build_kwok() {
	log "building kwok $KWOK_VERSION"
	GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
	# kwok does nothing without stages; the module ships them. Keep the node ones and
	# the pod lifecycle; internal/k8stest swaps pod-ready for its own stages, which
	# also make reserved test images fail (never ready, image pull error, crash loop).
	local st
	st="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
	: >"$BIN/kwok-stages.yaml"
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		{ echo '---'; cat "$st/$f"; } >>"$BIN/kwok-stages.yaml"
	done
}

# heartbeat prints a line every 30 s while a cold build runs: the go builds
# are silent for minutes, and a silent step on a busy machine looks hung.
heartbeat() {
	local t0=$SECONDS
	while sleep 30; do
		log "still building ($((SECONDS - t0))s so far; about 7 minutes on two idle cores)"
	done
}

cmd_build() {
	mkdir -p "$BIN" "$SRC"
	# One build per cache even when several callers ask at once.
	exec 9>"$TOP/.lock"
	if ! flock -n 9; then
		log "another build of $TOP is running; waiting for it"
		flock 9
	fi
	if [ -f "$STAMP" ]; then
		log "cached in $BIN"
		echo "$BIN"
		return
	fi
	export GOWORK=off GOFLAGS=-buildvcs=false
	local t0=$SECONDS
	log "cold build into $BIN"
	# A global, not a local: the EXIT trap runs after a failed step has
	# left this function.
	heartbeat &
	HEARTBEAT_PID=$!
	trap 'kill "$HEARTBEAT_PID" 2>/dev/null' EXIT
	build_kubernetes
	build_etcd
	build_kwok
	kill "$HEARTBEAT_PID" 2>/dev/null
	trap - EXIT
	rm -rf "$SRC" # 1+ GB of sources; the module cache keeps what a rebuild needs
	date -u +%FT%TZ >"$STAMP"
	log "built in $((SECONDS - t0))s into $BIN"
	echo "$BIN"
}

case "${1:-}" in
build) cmd_build ;;
bindir) echo "$BIN" ;;
*)
	echo "usage: $0 build|bindir" >&2
	exit 2
	;;
esac
