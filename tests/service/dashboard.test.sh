#!/usr/bin/env bash
# tests/service/dashboard.test.sh - every panel of the Grafana dashboard in
# tests/fixtures/grafana_dashboard.json (vLLM's example dashboard, panel for
# panel, plus the vLLM series it does not chart) gets data from a real
# Prometheus (/usr/bin/prometheus) scraping gemma-run on loopback every
# second while concurrent streaming and non-streaming requests run: each
# expression, with $model_name and $__rate_interval filled in as Grafana
# would, is evaluated through /api/v1/query and must return at least one
# sample with a finite value (a series that is not exported returns none;
# a histogram that never saw a request returns NaN). Also promtool check
# metrics on the /metrics that was scraped.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
PPID_PROM=
trap '[ -n "$PPID_PROM" ] && kill "$PPID_PROM" 2>/dev/null; kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL dash_setup: $BIN not built"; exit 1; fi
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
	echo "FAIL dash_setup: prometheus and promtool are needed (apt-get install prometheus)"; exit 1
fi
MODEL=$(model_tiny) || { echo "FAIL dash_setup: cannot make the tiny model"; exit 1; }
DASH=tests/fixtures/grafana_dashboard.json

start_serve "$T/log" --model "$MODEL" --served-model-name tiny --max-model-len 256 --log-format json
if ! wait_ready 60; then echo "FAIL dash_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"

PPORT=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gemma-run
    static_configs:
      - targets: ['127.0.0.1:$SPORT']
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/data" \
	--web.listen-address="127.0.0.1:$PPORT" >"$T/prom.log" 2>&1 &
PPID_PROM=$!
P="http://127.0.0.1:$PPORT"
up=0
for _ in $(seq 200); do
	if curl -s "$P/api/v1/query?query=up" | grep -q '"value":\[[0-9.]*,"1"\]'; then up=1; break; fi
	kill -0 "$PPID_PROM" 2>/dev/null || break
	sleep 0.1
done
if [ $up != 1 ]; then echo "FAIL dash_setup: prometheus does not scrape gemma-run"; tail -5 "$T/prom.log"; exit 1; fi

# --- load: 3 rounds of 4 concurrent requests (2 streaming, 2 not, one n=2) ---
for round in 1 2 3; do
	for i in 1 2; do
		curl -s -o /dev/null -H 'Content-Type: application/json' \
			--data-binary "{\"prompt\":\"Round $round request $i: tell me a story\",\"max_tokens\":24,\"stream\":true}" \
			"$U/v1/completions" &
		curl -s -o /dev/null -H 'Content-Type: application/json' \
			--data-binary "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello $round $i\"}],\"max_tokens\":16,\"n\":$i}" \
			"$U/v1/chat/completions" &
	done
	wait_for=$(jobs -rp | grep -v "^$PPID_PROM\$" | grep -v "^$SPID\$")
	for p in $wait_for; do wait "$p"; done
	sleep 1
done
sleep 2.5	# two more scrapes after the last request

curl -s "$U/metrics" >"$T/m"
promtool check metrics <"$T/m" >"$T/pt" 2>&1
# vLLM's names: ':' by design, and a histogram named ..._total
grep -v "metric names should not contain ':'" "$T/pt" |
	grep -vF 'vllm:iteration_tokens_total non-counter metrics should not have "_total" suffix' >"$T/pt2"
[ -s "$T/m" ] && [ ! -s "$T/pt2" ]
check dash_promtool $? "$(head -5 "$T/pt2")"

# the new series agree with the old ones: each step's tokens are the prompt
# tokens plus every generated token but a request's last; the phases add up
python3 - "$T/m" <<'PY'
import re, sys
v = {}
for l in open(sys.argv[1]):
    m = re.match(r'^([a-zA-Z0-9_:]+)(\{[^}]*\})? (\S+)$', l.strip())
    if m:
        key = m.group(1) + (re.sub(r',?model_name="[^"]*"', "", m.group(2) or "") if m.group(2) else "")
        v[key.replace("{}", "")] = float(m.group(3))
fin = sum(v['vllm:request_success_total{finished_reason="%s"}' % r] for r in ("stop", "length"))
want = v["vllm:prompt_tokens_total"] + v["vllm:generation_tokens_total"] - fin
it = v["vllm:iteration_tokens_total_sum"]
ok = fin >= 12 and it == want and v["vllm:iteration_tokens_total_count"] > 0
pre, dec, inf = (v["vllm:request_%s_time_seconds_sum" % k] for k in ("prefill", "decode", "inference"))
ok = ok and pre > 0 and dec > 0 and abs(pre + dec - inf) < 1e-3
ok = ok and v["vllm:request_queue_time_seconds_sum"] + inf <= v["vllm:e2e_request_latency_seconds_sum"] + 1e-6
ok = ok and v["vllm:request_max_num_generation_tokens_count"] == 12 and v["vllm:request_params_n_sum"] == 15
print("PASS dash_series_consistent" if ok else "FAIL dash_series_consistent: finished %g, iteration sum %g want %g, "
      "prefill %g decode %g inference %g, max_gen count %g, n sum %g" % (fin, it, want, pre, dec, inf,
      v["vllm:request_max_num_generation_tokens_count"], v["vllm:request_params_n_sum"]))
PY

python3 - "$DASH" "$P" <<'PY'
import json, math, sys, urllib.parse, urllib.request
dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
n = 0
for p in dash["panels"]:
    for t in p["targets"]:
        n += 1
        expr = t["expr"].replace("$model_name", "tiny").replace("$__rate_interval", "20s")
        name = "dash_%d%s_%s" % (p["id"], t["refId"], p["title"].lower().replace(" ", "_"))
        try:
            url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            r = json.load(urllib.request.urlopen(url, timeout=10))
        except Exception as e:
            print("FAIL %s: query error %s: %s" % (name, e, expr))
            continue
        res = r.get("data", {}).get("result", [])
        vals = [float(s["value"][1]) for s in res]
        if r.get("status") != "success" or not res:
            print("FAIL %s: no data: %s" % (name, expr))
        elif not any(math.isfinite(v) for v in vals):
            print("FAIL %s: only NaN/Inf %s: %s" % (name, vals[:4], expr))
        else:
            print("PASS %s" % name)
print("PASS dash_expressions_counted" if n >= 27 else "FAIL dash_expressions_counted: %d < 27" % n)
PY
