#!/usr/bin/env bash
# Load run of the gateway against a zero-latency mock upstream on loopback,
# and of the same mock directly, in one run. Prints RPS, p50 and p99 of both
# and their ratio, at concurrency 32 and 1, then the agent's resident memory.
# Needs wrk (Debian package wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)"; exit 1; }

DUR=${DUR:-10s}
MOCK=127.0.0.1:${MOCK_PORT:-7481}
GW=127.0.0.1:${GW_PORT:-7480}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

go build -o "$tmp/gantry" .
go build -o "$tmp/mock" ./bench/mock
"$tmp/mock" -addr "$MOCK" &
KEY=gk_bench-key-0123456789
sed -e "s#@MOCK@#http://$MOCK/v1#" -e "s#@HASH@#$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)#" bench/gateway.yaml > "$tmp/gateway.yaml"
"$tmp/gantry" agent --config "$tmp/gateway.yaml" --http-addr "$GW" --data-dir "$tmp/data" --log-level warn &
AGENT=$!
for _ in $(seq 50); do curl -sf "http://$GW/readyz" >/dev/null && curl -sf "http://$MOCK/healthz" >/dev/null && break; sleep 0.1; done

cat > "$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load generator, please."}],"max_tokens":16}'
LUA

# run NAME URL CONNS -> "rps p50 p99" (latencies in ms)
run() {
  wrk -t 1 -c "$3" -d "$DUR" --latency -s "$tmp/post.lua" "$2" > "$tmp/$1.out"
  awk -v name="$1" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=ms($2) } $1=="99%" { p99=ms($2) }
    /Non-2xx/ { bad=$NF }
    END { printf "%-16s rps %9.0f  p50 %7.3f ms  p99 %7.3f ms%s\n", name, rps, p50, p99, (bad ? "  NON-2XX " bad : ""); print rps, p50, p99 > "/dev/stderr" }' "$tmp/$1.out" 2> "$tmp/$1.num"
}

warm() { wrk -t 1 -c 8 -d 2s -s "$tmp/post.lua" "$1" >/dev/null; }
warm "http://$MOCK/v1/chat/completions"; warm "http://$GW/v1/chat/completions"

echo "== load: concurrency 32, $DUR each (wrk, 1 thread; loopback; mock upstream answers at once)"
run direct-c32  "http://$MOCK/v1/chat/completions" 32
run gateway-c32 "http://$GW/v1/chat/completions" 32
echo "== latency: concurrency 1"
run direct-c1   "http://$MOCK/v1/chat/completions" 1
run gateway-c1  "http://$GW/v1/chat/completions" 1

read d32 _ _ < "$tmp/direct-c32.num"; read g32 _ _ < "$tmp/gateway-c32.num"
read _ d1p50 d1p99 < "$tmp/direct-c1.num"; read _ g1p50 g1p99 < "$tmp/gateway-c1.num"
awk -v d="$d32" -v g="$g32" 'BEGIN { printf "throughput through the gateway at c=32: %.1f%% of direct\n", 100*g/d }'
awk -v a="$d1p50" -v b="$g1p50" -v c="$d1p99" -v e="$g1p99" 'BEGIN { printf "added latency at c=1: p50 %+.3f ms, p99 %+.3f ms\n", b-a, e-c }'
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
echo "agent resident memory after the load: $((rss / 1024)) MB"
