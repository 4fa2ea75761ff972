#!/usr/bin/env bash
# Soak: runs `gantry demo --headless` under load for SOAK_MINUTES (default
# 10) at SOAK_RATE calls per second (default 40), samples every agent's
# /metrics once a minute, and prints resident memory, the Go heap's goal
# (twice the heap live after the last collection), goroutines, open files
# and the trace store's size, then start against end per agent.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-10}
RATE=${SOAK_RATE:-40}
BIN=${BIN:-bin/gantry}
tmp=$(mktemp -d)
demo=
stop() { [ -z "$demo" ] || { kill -INT "$demo" 2>/dev/null || true; wait "$demo" || true; }; demo=; }
trap 'stop; rm -rf "$tmp"' EXIT

"$BIN" demo --headless --rate "$RATE" >"$tmp/out" 2>"$tmp/err" &
demo=$!
for _ in $(seq 300); do grep -q '^Ctrl-C' "$tmp/out" && break; kill -0 $demo 2>/dev/null || { cat "$tmp/err"; exit 1; }; sleep 0.1; done
mapfile -t agents < <(awk '/^  agent-[0-9]+ +http/ {print $2}' "$tmp/out")
[ ${#agents[@]} -gt 0 ] || { cat "$tmp/out" "$tmp/err"; exit 1; }

# sample AGENT prints: rss_MB heap_goal_MB goroutines open_fds traces store_MB calls
sample() {
  curl -sf "$1/metrics" | awk '
    /^process_resident_memory_bytes / {rss=$2}
    /^go_memstats_next_gc_bytes / {heap=$2}
    /^go_goroutines / {g=$2}
    /^process_open_fds / {fd=$2}
    /^gantry_trace_store_traces / {tr=$2}
    /^gantry_trace_store_bytes / {sb=$2}
    /^gantry_requests_total\{/ {calls+=$NF}
    END {printf "%8.1f %12.1f %10d %8d %8d %8.2f %8d\n", rss/1048576, heap/1048576, g, fd, tr, sb/1048576, calls}'
}

echo "soak: ${#agents[@]} agents, $RATE calls/s for $MINUTES min ($(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3))"
printf "%-4s %-8s %8s %12s %10s %8s %8s %8s %8s\n" min agent rss_MB heap_goal_MB goroutines open_fds traces store_MB calls
declare -A first last
for m in $(seq 0 "$MINUTES"); do
  [ "$m" -gt 0 ] && sleep 60
  for i in "${!agents[@]}"; do
    row=$(sample "${agents[$i]}")
    [ "$m" -eq 1 ] && first[$i]=$row   # minute 0 is before any load
    last[$i]=$row
    printf "%-4s %-8s %s\n" "$m" "agent-$((i + 1))" "$row"
  done
done
echo
echo "start (after the first loaded minute) -> end:"
for i in "${!agents[@]}"; do
  printf "agent-%d  %s\n         %s\n" $((i + 1)) "${first[$i]:-${last[$i]}}" "${last[$i]}"
done
stop
tail -n 2 "$tmp/err"
