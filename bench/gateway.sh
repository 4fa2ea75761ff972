#!/usr/bin/env bash
# Side-by-side load run on loopback, against one zero-latency mock upstream:
#   direct   wrk to the mock
#   hop      a bare httputil.ReverseProxy in front of the mock (bench/hop)
#   gateway  a Gantry agent with the bench configuration (bench/gateway.yaml:
#            key auth, rate limit, budget, routing, traces, metrics)
# Rounds are interleaved (each round runs every target once at c=32 and once
# at c=1), and the table reports medians over the rounds, each figure also
# as a share of the bare hop's. Needs wrk (Debian package wrk).
#   ROUNDS=5 DUR=5s ./bench/gateway.sh
# With two CPUs or more and taskset (util-linux), the proxy under test (hop
# or gateway) runs alone on CPU 0 and wrk and the mock on CPU 1, so its
# throughput is its own CPU cost per request rather than a share of CPUs
# it contends for with the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)"; exit 1; }

DUR=${DUR:-5s}
ROUNDS=${ROUNDS:-5}
MOCK=127.0.0.1:${MOCK_PORT:-7481}
HOP=127.0.0.1:${HOP_PORT:-7482}
GW=127.0.0.1:${GW_PORT:-7480}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

# on CPU: the prefix that pins a process, empty where pinning is not possible
PROXY=(); LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PROXY=(taskset -c 0); LOAD=(taskset -c 1)
fi

go build -o "$tmp/gantry" .
go build -o "$tmp/mock" ./bench/mock
go build -o "$tmp/hop" ./bench/hop
"${LOAD[@]}" "$tmp/mock" -addr "$MOCK" &
"${PROXY[@]}" "$tmp/hop" -addr "$HOP" -upstream "http://$MOCK" 2>"$tmp/hop.log" &  # wrk closing its connections is logged as proxy errors
HOPPID=$!
KEY=gk_bench-key-0123456789
sed -e "s#@MOCK@#http://$MOCK/v1#" -e "s#@HASH@#$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)#" bench/gateway.yaml > "$tmp/gateway.yaml"
"${PROXY[@]}" "$tmp/gantry" agent --config "$tmp/gateway.yaml" --http-addr "$GW" --data-dir "$tmp/data" --log-level warn &
AGENT=$!
for _ in $(seq 100); do
  curl -sf "http://$GW/readyz" >/dev/null && curl -sf "http://$MOCK/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://$GW/readyz" >/dev/null || { echo "bench: the agent did not become ready"; exit 1; }

cat > "$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load generator, please."}],"max_tokens":16}'
LUA

declare -A URL=([direct]="http://$MOCK/v1/chat/completions" [hop]="http://$HOP/v1/chat/completions" [gateway]="http://$GW/v1/chat/completions")

# run TARGET CONNS ROUND: appends "rps p50 p99" (ms) to $tmp/TARGET-cCONNS
run() {
  "${LOAD[@]}" wrk -t 1 -c "$2" -d "$DUR" --latency -s "$tmp/post.lua" "${URL[$1]}" > "$tmp/out"
  if grep -q "Non-2xx" "$tmp/out"; then echo "bench: $1 answered errors:"; cat "$tmp/out"; exit 1; fi
  awk 'function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 } $1=="50%" { p50=ms($2) } $1=="99%" { p99=ms($2) }
    END { print rps, p50, p99 }' "$tmp/out" >> "$tmp/$1-c$2"
}

for t in direct hop gateway; do "${LOAD[@]}" wrk -t 1 -c 8 -d 2s -s "$tmp/post.lua" "${URL[$t]}" >/dev/null; done
for r in $(seq "$ROUNDS"); do
  for t in direct hop gateway; do run "$t" 32; done
  for t in direct hop gateway; do run "$t" 1; done
  echo "round $r of $ROUNDS done" >&2
done

# med FILE COLUMN: the median of a column
med() { cut -d' ' -f"$2" "$1" | sort -g | awk '{ v[NR]=$1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }
peak() { awk '/VmHWM/ { printf "%.0f", $2/1024 }' "/proc/$1/status"; }

hop32=$(med "$tmp/hop-c32" 1); hop50=$(med "$tmp/hop-c1" 2); hop99=$(med "$tmp/hop-c1" 3)
d50=$(med "$tmp/direct-c1" 2); d99=$(med "$tmp/direct-c1" 3)
echo
pinned="sharing every CPU"
[ ${#PROXY[@]} -gt 0 ] && pinned="proxy alone on CPU 0, wrk and mock on CPU 1"
echo "medians of $ROUNDS interleaved rounds, $DUR each (wrk -t 1; loopback; the mock answers at once; $pinned)"
printf "%-8s %10s %8s %16s %16s %9s\n" "" "req/s c=32" "of hop" "added p50 c=1" "added p99 c=1" "peak RSS"
for t in direct hop gateway; do
  rps=$(med "$tmp/$t-c32" 1); p50=$(med "$tmp/$t-c1" 2); p99=$(med "$tmp/$t-c1" 3)
  rss="-"
  [ "$t" = hop ] && rss="$(peak $HOPPID) MB"
  [ "$t" = gateway ] && rss="$(peak $AGENT) MB"
  awk -v t="$t" -v rps="$rps" -v hop="$hop32" -v p50="$p50" -v p99="$p99" -v d50="$d50" -v d99="$d99" -v rss="$rss" \
    'BEGIN { printf "%-8s %10.0f %7.0f%% %+9.3f ms     %+9.3f ms     %9s\n", t, rps, 100*rps/hop, p50-d50, p99-d99, rss }'
done
awk -v g50="$(med "$tmp/gateway-c1" 2)" -v g99="$(med "$tmp/gateway-c1" 3)" -v h50="$hop50" -v h99="$hop99" \
  'BEGIN { printf "gateway beyond the hop at c=1: p50 %+.3f ms, p99 %+.3f ms\n", g50-h50, g99-h99 }'
# Pinned, the proxy is the only process on its CPU and saturates it at
# c=32, so one CPU-second over its requests per second is its CPU per call.
if [ ${#PROXY[@]} -gt 0 ]; then
  awk -v g="$(med "$tmp/gateway-c32" 1)" -v h="$hop32" \
    'BEGIN { printf "CPU per call: hop %.1f us, gateway %.1f us, the pipeline alone %.1f us\n", 1e6/h, 1e6/g, 1e6/g-1e6/h }'
fi
