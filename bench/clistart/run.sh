#!/usr/bin/env bash
# Measures the start of `gantry version` for several git refs side by side:
# each ref is built (from `git archive`, CGO_ENABLED=0 -trimpath, as `make
# build` does), then ROUNDS interleaved rounds run every binary once each
# for the wall time, once with GODEBUG=inittrace=1 for the summed package
# initialisation, and once under GNU time for the max RSS. It prints per
# ref the median and the fastest of each, the binary's size and the
# packages with init work. See bench/README.md, "CLI start".
#
#   bench/clistart/run.sh REF...            (default: main HEAD)
#   ROUNDS=60 bench/clistart/run.sh main HEAD /path/to/a/gantry
#
# An argument that is an executable file is taken as a built binary.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROUNDS=${ROUNDS:-40}
refs=("$@")
[ ${#refs[@]} -gt 0 ] || refs=(main HEAD)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bins=()
for i in "${!refs[@]}"; do
	ref=${refs[$i]}
	built=$ref
	if ! [ -f "$ref" ] || ! [ -x "$ref" ]; then
		src=$work/src$i
		mkdir -p "$src"
		git archive "$ref" | tar -x -C "$src"
		built=$work/linked$i
		(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$built" ./cmd/gantry)
	fi
	# Every binary runs from a plain copy, as installed: the file the linker
	# has just written shows about 2.5 MiB more RSS (see BenchmarkCLIStart).
	mkdir -p "$work/bin$i"
	cat "$built" >"$work/bin$i/$(basename "$built")"
	chmod +x "$work/bin$i/$(basename "$built")"
	bins+=("$work/bin$i/$(basename "$built")")
done

# One file of figures per binary and measure, one line per round.
for ((r = 0; r < ROUNDS; r++)); do
	for i in "${!bins[@]}"; do
		b=${bins[$i]}
		s=$EPOCHREALTIME
		"$b" version >/dev/null
		e=$EPOCHREALTIME
		awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", (e - s) * 1000 }' >>"$work/wall$i"
		GODEBUG=inittrace=1 "$b" version 2>&1 >/dev/null |
			awk '$1 == "init" && $7 == "clock," { s += $5; n++ } END { printf "%.3f %d\n", s, n }' >>"$work/init$i"
		/usr/bin/time -f "%M" "$b" version 2>>"$work/rss$i" >/dev/null
	done
done

# median and min of column 1 of a file
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%8.2f %8.2f", v[int((NR + 1) / 2)], v[1] }'; }

printf '%-16s %8s %8s %8s %8s %9s %6s %8s\n' ref wall-p50 wall-min init-p50 init-min maxrss-MiB pkgs size-MB
for i in "${!bins[@]}"; do
	pkgs=$(awk '{ print $2 }' "$work/init$i" | tail -1)
	rss=$(sort -n "$work/rss$i" | tail -1)
	size=$(stat -c %s "${bins[$i]}")
	printf '%-16s %s %s %9.1f %6s %8.1f\n' "$(basename "${refs[$i]}")" "$(stats "$work/wall$i")" "$(stats "$work/init$i")" \
		"$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$pkgs" "$(awk -v s="$size" 'BEGIN { print s / 1e6 }')"
done
echo "wall and init in ms; $ROUNDS interleaved rounds; max RSS is the largest of the rounds (GNU time)"
