#!/usr/bin/env bash
# Router benchmark: wrk against the backend directly, then through gantry
# proxy, nginx, HAProxy and Caddy, all on loopback; rounds interleaved;
# prints the median requests/s, p50 and p99 of each, and ratios to direct
# and to nginx. Run by `make bench`, never by tests. See bench/README.md.
#
# Knobs (environment): DURATION (5s), CONNS (64), ROUNDS (3), WRK_THREADS (1),
# PROXY_CPU (0: proxy and backend), WRK_CPU (1: wrk). Pinning needs taskset
# and two CPUs; without them everything runs unpinned.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-1}
PROXY_CPU=${PROXY_CPU:-0}
WRK_CPU=${WRK_CPU:-1}

work=$(mktemp -d /tmp/gantry-bench.XXXXXX)
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
(cd "$root" && go build -o "$work/gantry" ./cmd/gantry && go build -o "$work/backend" ./bench/proxy/backend)

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

start gantry "$PROXY_CPU" "$work/gantry" proxy run --listen 127.0.0.1:19001 \
	--admin "$work/proxy.sock" --state "$work/proxy.json"
wait_port 19001 gantry
for i in $(seq 1 200); do
	"$work/gantry" proxy status --admin "$work/proxy.sock" >/dev/null 2>&1 && break
	sleep 0.05
done
"$work/gantry" proxy deploy bench --host bench.localhost --target 127.0.0.1:19000 --admin "$work/proxy.sock" >&2

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

# bench NAME PORT DURATION OUT
bench() {
	# shellcheck disable=SC2046
	$(pin "$WRK_CPU") wrk -t"$WRK_THREADS" -c"$CONNS" -d"$3" --latency \
		-H 'Host: bench.localhost' "http://127.0.0.1:$2/" >"$4"
	if ! grep -q '^Requests/sec' "$4"; then
		echo "bench: wrk against $1 failed:" >&2
		cat "$4" >&2
		exit 1
	fi
}

# parse FILE: prints "rps p50ms p99ms errors"
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
	/Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { errs += $5 }
	END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errs }' "$1"
}

median() { # median of the arguments
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "bench: warming up" >&2
for i in "${!names[@]}"; do bench "${names[$i]}" "${ports[$i]}" 1s "$work/warmup.txt"; done

for r in $(seq 1 "$ROUNDS"); do
	for i in "${!names[@]}"; do
		echo "bench: round $r/${ROUNDS}: ${names[$i]}" >&2
		bench "${names[$i]}" "${ports[$i]}" "$DURATION" "$work/wrk-${names[$i]}-$r.txt"
	done
done

declare -A RPS P50 P99 ERR
for n in "${names[@]}"; do
	rps=() p50=() p99=() errs=0
	for r in $(seq 1 "$ROUNDS"); do
		read -r a b c e < <(parse "$work/wrk-$n-$r.txt")
		rps+=("$a") p50+=("$b") p99+=("$c")
		errs=$((errs + e))
	done
	RPS[$n]=$(median "${rps[@]}")
	P50[$n]=$(median "${p50[@]}")
	P99[$n]=$(median "${p99[@]}")
	ERR[$n]=$errs
done

echo
echo "wrk -t$WRK_THREADS -c$CONNS -d$DURATION --latency, $ROUNDS rounds interleaved, medians; pinned: $pinning (proxy+backend CPU $PROXY_CPU, wrk CPU $WRK_CPU)"
printf '%-8s %10s %9s %9s %9s %9s %7s\n' proxy 'req/s' 'p50 ms' 'p99 ms' 'vs direct' 'vs nginx' errors
for n in "${names[@]}"; do
	printf '%-8s %10s %9s %9s %9s %9s %7s\n' "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" \
		"$(awk -v a="${RPS[$n]}" -v b="${RPS[direct]}" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v a="${RPS[$n]}" -v b="${RPS[nginx]}" 'BEGIN { printf "%.2f", a / b }')" \
		"${ERR[$n]}"
done
