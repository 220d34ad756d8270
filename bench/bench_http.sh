#!/usr/bin/env bash
# bench/bench_http.sh - HTTP front overhead of `gemma-run serve` with wrk on
# 127.0.0.1: GET /health (pure HTTP path) against nginx serving a static
# 15-byte file on the same machine in the same run (baseline), then a
# tiny-model completion (max_tokens 8, CPU backend) at several concurrencies.
# Validates first (200 + body), then times; prints req/s, p50, p99 and the
# ratio to the baseline. HTTP_BENCH_SECONDS (default 5) per measurement.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/service/lib.sh
SECS=${HTTP_BENCH_SECONDS:-5}
T=$(mktemp -d)
NPID=
trap '[ -n "$NPID" ] && kill "$NPID" 2>/dev/null; kill_all >/dev/null; rm -rf "$T"' EXIT
command -v wrk >/dev/null || { echo "bench_http: wrk not installed (tools/deps.sh)"; exit 1; }
[ -x "$BIN" ] || { echo "bench_http: $BIN not built"; exit 1; }
MODEL=$(model_tiny) || { echo "bench_http: cannot make the tiny model"; exit 1; }

# wrk_run NAME URL CONNS [SCRIPT]: prints "NAME rps p50_ms p99_ms" and stores it in $T/NAME
wrk_run() {
	local name=$1 url=$2 c=$3 s=${4:-}
	local args=(-t 1 -c "$c" -d "${SECS}s" --latency)
	[ -n "$s" ] && args+=(-s "$s")
	wrk "${args[@]}" "$url" >"$T/$name.out" 2>&1
	python3 - "$T/$name.out" "$name" <<'PY' | tee "$T/$name"
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("%-28s %10.0f req/s  p50 %8.3f ms  p99 %8.3f ms%s" % (sys.argv[2], rps, p50, p99,
      "  (%s non-2xx!)" % errs.group(1) if errs else ""))
PY
}

# baseline: nginx, static file, one worker (gemma-run's loop is one thread too)
NPORT=$(free_port)
chmod 755 "$T"; mkdir -p "$T/ngx/www" && chmod -R 755 "$T/ngx" && printf '{"status":"ok"}' >"$T/ngx/www/health"
cat >"$T/ngx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $T/ngx; proxy_temp_path $T/ngx; fastcgi_temp_path $T/ngx;
	uwsgi_temp_path $T/ngx; scgi_temp_path $T/ngx;
	server { listen 127.0.0.1:$NPORT; root $T/ngx/www; default_type application/json; }
}
NGX
nginx -c "$T/ngx/nginx.conf" -p "$T/ngx" &
NPID=$!
start_serve "$T/serve.log" --model "$MODEL" --log-format text --log-level warning --max-num-seqs 64
wait_ready 120 || { echo "bench_http: server not ready"; tail "$T/serve.log"; exit 1; }
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/health" && break; sleep 0.05; done

# validate
[ "$(curl -s "http://127.0.0.1:$NPORT/health")" = '{"status":"ok"}' ] || { echo "bench_http: nginx baseline not serving"; cat "$T/ngx/error.log"; exit 1; }
[ "$(curl -s "http://127.0.0.1:$SPORT/health")" = '{"status":"ok"}' ] || { echo "bench_http: /health not ok"; exit 1; }
cat >"$T/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"prompt":"Hello world","max_tokens":8,"temperature":0}'
wrk.headers["Content-Type"] = "application/json"
LUA
curl -s -H 'Content-Type: application/json' --data '{"prompt":"Hello world","max_tokens":8,"temperature":0}' \
	"http://127.0.0.1:$SPORT/v1/completions" | jq -e '.usage.completion_tokens == 8' >/dev/null ||
	{ echo "bench_http: completion not valid"; exit 1; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk 1 thread, ${SECS}s each"
for c in 10 50; do
	wrk_run "nginx-static-c$c" "http://127.0.0.1:$NPORT/health" $c
	wrk_run "gemma-health-c$c" "http://127.0.0.1:$SPORT/health" $c
	python3 - "$T/nginx-static-c$c" "$T/gemma-health-c$c" <<'PY'
import re, sys
def get(p):
    t = open(p).read()
    return float(re.search(r"([\d.]+) req/s", t).group(1)), float(re.search(r"p50\s+([\d.]+)", t).group(1))
(nr, np50), (gr, gp50) = get(sys.argv[1]), get(sys.argv[2])
print("  /health vs nginx static: %.2fx req/s; per-request time %.4f ms vs %.4f ms (added %.4f ms)"
      % (gr / nr, 1e3 / gr, 1e3 / nr, 1e3 / gr - 1e3 / nr))
PY
done
for c in 1 4 16; do
	wrk_run "completion-8tok-c$c" "http://127.0.0.1:$SPORT/v1/completions" $c "$T/post.lua"
done
