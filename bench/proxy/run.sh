#!/usr/bin/env bash
# Router benchmark: wrk against the backend directly, then through gantry
# proxy, nginx, HAProxy and Caddy (and, with BASE_REF, gantry built from
# that git ref), all on loopback; rounds interleaved; for each connection
# count prints the median requests/s, p50 and p99 of each, the CPU time its
# process tree spent per request served (from /proc), and ratios to nginx.
# Run by `make bench`, never by tests. See bench/README.md.
#
# Knobs (environment): DURATION (5s), CASES ("small:64 small:1000": one
# table each, CASE:CONNECTIONS with CASE small (GET /, 33 bytes back), large
# (GET /1m, 1 MiB back) or upload (POST of 100 KB to /)),
# ROUNDS (3), WRK_THREADS (1), PROXY_CPU (0: proxy and backend), WRK_CPU
# (1: wrk), BASE_REF (unset: a git ref, e.g. main, whose gantry runs beside
# this tree's as gantry-base), IDLE_CONNS (2000; 0 skips: before any load,
# that many keep-alive connections are opened to each proxy, one GET each,
# and held idle; prints the growth of each proxy's resident memory per
# connection), GANTRY_ENV (unset: VAR=VALUE words given to this tree's
# gantry only, e.g. "GOGC=400" to compare a setting with gantry-base built
# from the same ref). Pinning needs taskset and two CPUs; without them everything
# runs unpinned.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-5s}
CASES=${CASES:-small:64 small:1000}
BASE_REF=${BASE_REF:-}
ROUNDS=${ROUNDS:-3}
IDLE_CONNS=${IDLE_CONNS:-2000}
WRK_THREADS=${WRK_THREADS:-1}
PROXY_CPU=${PROXY_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
GANTRY_ENV=${GANTRY_ENV:-}

work=$(mktemp -d /tmp/gantry-bench.XXXXXX)
# nginx's workers run as an unprivileged user and spool request bodies under
# the work directory.
chmod 755 "$work"
pids=()
cleanup() {
	# Only the processes this script started, by PID.
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v caddy >/dev/null || need+=(caddy)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: missing ${need[*]}; run as root to install them from Debian" >&2
		exit 1
	fi
	echo "bench: installing ${need[*]}" >&2
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

pinning=no
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pinning=yes; fi
pin() { # pin CPU: prints the prefix that pins a command to CPU
	if [ "$pinning" = yes ]; then echo taskset -c "$1"; fi
}

echo "bench: building gantry and the backend" >&2
(cd "$root" && go build -o "$work/gantry" ./cmd/gantry && go build -o "$work/backend" ./bench/proxy/backend &&
	go build -o "$work/idleconns" ./bench/proxy/idleconns)
if [ -n "$BASE_REF" ]; then
	echo "bench: building gantry at $BASE_REF as gantry-base" >&2
	mkdir -p "$work/base-src"
	(cd "$root" && git archive "$BASE_REF") | tar -x -C "$work/base-src"
	(cd "$work/base-src" && go build -o "$work/gantry-base" ./cmd/gantry)
fi

# start NAME CPU command...: runs pinned in the background, logs to
# $work/NAME.log. taskset execs the command, so $! is the server's own PID.
start() {
	local name=$1 cpu=$2; shift 2
	# shellcheck disable=SC2046
	$(pin "$cpu") "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
}

wait_port() { # wait_port PORT NAME
	local i
	for i in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "bench: $2 did not listen on $1; its log:" >&2
	cat "$work/$2.log" >&2
	exit 1
}

start backend "$PROXY_CPU" "$work/backend" -listen 127.0.0.1:19000
wait_port 19000 backend

# start_gantry NAME BINARY PORT [VAR=VALUE...]: a router with one route to
# the backend, its process given the variables.
start_gantry() {
	local name=$1 bin=$2 port=$3 i
	shift 3
	start "$name" "$PROXY_CPU" env "$@" "$bin" proxy run --listen "127.0.0.1:$port" \
		--admin "$work/$name.sock" --state "$work/$name.json"
	wait_port "$port" "$name"
	for i in $(seq 1 200); do
		"$bin" proxy status --admin "$work/$name.sock" >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$bin" proxy deploy bench --host bench.localhost --target 127.0.0.1:19000 --admin "$work/$name.sock" >&2
}
# shellcheck disable=SC2086
start_gantry gantry "$work/gantry" 19001 $GANTRY_ENV

mkdir -p "$work/nginx/tmp"
start nginx "$PROXY_CPU" nginx -p "$work/nginx/" -c "$here/nginx.conf" -g 'daemon off;'
wait_port 19002 nginx

start haproxy "$PROXY_CPU" haproxy -db -f "$here/haproxy.cfg"
wait_port 19003 haproxy

start caddy "$PROXY_CPU" env XDG_DATA_HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy" \
	caddy run --config "$here/Caddyfile" --adapter caddyfile
wait_port 19004 caddy

names=(direct gantry nginx haproxy caddy)
ports=(19000 19001 19002 19003 19004)
# The PID of each contender's process tree (the backend's for direct).
declare -A PID
PID[direct]=${pids[0]}
PID[gantry]=${pids[1]}
PID[nginx]=${pids[2]}
PID[haproxy]=${pids[3]}
PID[caddy]=${pids[4]}
if [ -n "$BASE_REF" ]; then
	start_gantry gantry-base "$work/gantry-base" 19005
	PID[gantry-base]=${pids[5]}
	names+=(gantry-base)
	ports+=(19005)
fi

# cpu_ticks PID: user+system clock ticks of PID and all its descendants.
cpu_ticks() {
	local p=$1 total=0 c f
	if [ -r "/proc/$p/stat" ]; then
		# Fields after the command name (which may hold spaces): utime is
		# the 12th, stime the 13th.
		f=$(sed 's/^.*) //' "/proc/$p/stat")
		total=$(awk '{ print $12 + $13 }' <<<"$f")
	fi
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		total=$((total + $(cpu_ticks "$c")))
	done
	echo "$total"
}
HZ=$(getconf CLK_TCK)

# The upload case's request, for wrk.
cat >"$work/upload.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 100000)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

# bench NAME PORT DURATION OUT CONNS [CASE]: runs wrk and appends to OUT the
# CPU ticks the contender's process tree spent meanwhile ("cpu_ticks N").
bench() {
	local t0 t1 path=/ script=()
	case "${6:-small}" in
	small) ;;
	large) path=/1m ;;
	upload) script=(-s "$work/upload.lua") ;;
	*) echo "bench: unknown case $6 (want small, large or upload)" >&2; exit 2 ;;
	esac
	t0=$(cpu_ticks "${PID[$1]}")
	# shellcheck disable=SC2046
	$(pin "$WRK_CPU") wrk -t"$WRK_THREADS" -c"$5" -d"$3" --latency "${script[@]}" \
		-H 'Host: bench.localhost' "http://127.0.0.1:$2$path" >"$4"
	t1=$(cpu_ticks "${PID[$1]}")
	echo "cpu_ticks $((t1 - t0))" >>"$4"
	if ! grep -q '^Requests/sec' "$4"; then
		echo "bench: wrk against $1 failed:" >&2
		cat "$4" >&2
		exit 1
	fi
}

# parse FILE: prints "rps p50ms p99ms errors timeouts cpu_us_per_request"
# (errors: connect, read and write errors and non-2xx answers)
parse() {
	awk '
	function ms(v) {
		if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
		if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
		if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
		return v
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8; tmo += $10 }
	/Non-2xx or 3xx responses:/ { errs += $5 }
	/ requests in / { reqs = $1 }
	/^cpu_ticks / { ticks = $2 }
	END {
		cpu = 0
		if (reqs > 0) cpu = ticks * 1e6 / hz / reqs
		printf "%.0f %.3f %.3f %d %d %.2f\n", rps, p50, p99, errs, tmo, cpu
	}' hz="$HZ" "$1"
}

median() { # median of the arguments
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# rss_kib PID: resident memory (KiB) of PID and all its descendants.
rss_kib() {
	local p=$1 total=0 c
	if [ -r "/proc/$p/status" ]; then
		total=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")
	fi
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		total=$((total + $(rss_kib "$c")))
	done
	echo "${total:-0}"
}

# idle NAME PORT: prints "NAME rss_before_kib rss_idle_kib bytes_per_conn"
# for IDLE_CONNS connections held idle (2 s) after one GET each.
idle() {
	local before after cpid i
	before=$(rss_kib "${PID[$1]}")
	rm -f "$work/idle.in"
	mkfifo "$work/idle.in"
	$(pin "$WRK_CPU") "$work/idleconns" -addr "127.0.0.1:$2" -n "$IDLE_CONNS" <"$work/idle.in" >"$work/idle.out" &
	cpid=$!
	exec 3>"$work/idle.in"
	for i in $(seq 1 600); do
		grep -q ready "$work/idle.out" 2>/dev/null && break
		if ! kill -0 "$cpid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	sleep 2
	after=$(rss_kib "${PID[$1]}")
	exec 3>&-
	wait "$cpid" || { echo "bench: idle connections to $1 failed" >&2; exit 1; }
	echo "$1 $before $after $(((after - before) * 1024 / IDLE_CONNS))"
}

if [ "$IDLE_CONNS" -gt 0 ]; then
	echo "bench: idle connections" >&2
	echo
	echo "idle: $IDLE_CONNS keep-alive connections, one GET each, held idle 2 s, on fresh processes; resident memory (VmRSS) of the proxy's process tree"
	printf '%-12s %12s %12s %14s\n' proxy 'rss KiB' 'idle KiB' 'bytes/conn'
	for i in "${!names[@]}"; do
		[ "${names[$i]}" = direct ] && continue
		idle "${names[$i]}" "${ports[$i]}" | awk '{ printf "%-12s %12s %12s %14s\n", $1, $2, $3, $4 }'
	done
fi

echo "bench: warming up" >&2
for i in "${!names[@]}"; do bench "${names[$i]}" "${ports[$i]}" 1s "$work/warmup.txt" 64; done

for spec in $CASES; do
	kind=${spec%%:*} conns=${spec##*:}
	for r in $(seq 1 "$ROUNDS"); do
		for i in "${!names[@]}"; do
			echo "bench: $kind -c$conns round $r/${ROUNDS}: ${names[$i]}" >&2
			bench "${names[$i]}" "${ports[$i]}" "$DURATION" "$work/wrk-${names[$i]}-$kind-$conns-$r.txt" "$conns" "$kind"
		done
	done

	declare -A RPS P50 P99 ERR TMO CPU
	for n in "${names[@]}"; do
		rps=() p50=() p99=() cpu=() errs=0 tmos=0
		for r in $(seq 1 "$ROUNDS"); do
			read -r a b c e o u < <(parse "$work/wrk-$n-$kind-$conns-$r.txt")
			rps+=("$a") p50+=("$b") p99+=("$c") cpu+=("$u")
			errs=$((errs + e)) tmos=$((tmos + o))
		done
		RPS[$n]=$(median "${rps[@]}")
		P50[$n]=$(median "${p50[@]}")
		P99[$n]=$(median "${p99[@]}")
		CPU[$n]=$(median "${cpu[@]}")
		ERR[$n]=$errs
		TMO[$n]=$tmos
	done

	echo
	echo "$kind: wrk -t$WRK_THREADS -c$conns -d$DURATION --latency, $ROUNDS rounds interleaved, medians; pinned: $pinning (proxy+backend CPU $PROXY_CPU, wrk CPU $WRK_CPU)"
	echo "cpu us/req: CPU time (user+system, /proc) of the proxy's process tree per request served; for direct, the backend's"
	printf '%-12s %9s %8s %8s %11s %11s %13s %7s %8s\n' proxy 'req/s' 'p50 ms' 'p99 ms' 'cpu us/req' 'rps/nginx' 'cpu nginx/x' errors timeouts
	for n in "${names[@]}"; do
		printf '%-12s %9s %8s %8s %11s %11s %13s %7s %8s\n' "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" "${CPU[$n]}" \
			"$(ratio "${RPS[$n]}" "${RPS[nginx]}")" "$(ratio "${CPU[nginx]}" "${CPU[$n]}")" "${ERR[$n]}" "${TMO[$n]}"
	done
done
