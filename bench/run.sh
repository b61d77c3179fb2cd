#!/usr/bin/env bash
# `make bench`: Release build, then cmdwire-server, the bare-Asio yardstick and (if installed)
# redis-server take turns under the same loads, a few rounds; prints a markdown table of
# same-round ratios (median over rounds) and writes it, with method and machine, to
# docs/PERFORMANCE.md.
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (1 s per run), BENCH_WARMUP (0.25 s),
# BENCH_BUILD (build-release), BENCH_OUT (docs/PERFORMANCE.md), BENCH_NO_INSTALL=1.
# BENCH_BEFORE=path/to/an/older/cmdwire-server: that build takes turns too, and a second table
# gives the ratios of this build and of that one to the same yardstick, from the same rounds
# (how a change on the request path is measured: before and after in one run).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-1}
warmup=${BENCH_WARMUP:-0.25}
build=${BENCH_BUILD:-build-release}
out=${BENCH_OUT:-docs/PERFORMANCE.md}
bin=$build/bin
started=$SECONDS

# ---- optional tools: Google Benchmark for the codec table, Redis for the PING yardstick and
# redis-benchmark as an independent load generator. Without them those rows are skipped.
if [[ -z ${BENCH_NO_INSTALL:-} ]]; then
  scripts/install-deps libbenchmark-dev redis-server redis-tools gnuplot-nox ||
    echo "bench: optional packages could not be installed; their rows are skipped" >&2
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target cmdwire-server cmdwire-bench cmdwire-baseline-echo \
  cmdwire-caller-bench
have_codec_bench=0
if cmake --build "$build" -j "${JOBS:-2}" --target cmdwire-codec-bench >/dev/null 2>&1; then
  have_codec_bench=1
fi

# ---- pinning: servers on CPU 0, load on CPU 1, so neither steals the other's core.
server_pin=()
load_pin=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0)
  load_pin=(taskset -c 1)
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server NAME CMD...: waits for "listening on HOST:PORT"; sets port_NAME and pid_NAME.
start_server() {
  local name=$1
  shift
  "${server_pin[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    grep -q 'listening on' "$tmp/$name.out" && break
    sleep 0.05
  done
  local port
  port=$(grep -o '[0-9]*$' "$tmp/$name.out" | head -n1)
  [[ -n $port ]] || { echo "bench: $name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
  printf -v "port_$name" '%s' "$port"
  printf -v "pid_$name" '%s' "$pid"
}

start_server cmdwire "$bin/cmdwire-server" --listen 127.0.0.1:0 --threads 1 --log-level warn
start_server yardstick "$bin/cmdwire-baseline-echo" --listen 127.0.0.1:0 --threads 1
before=${BENCH_BEFORE:-}
if [[ -n $before ]]; then
  start_server before "$before" --listen 127.0.0.1:0 --threads 1 --log-level warn
fi

have_redis=0
if command -v redis-server >/dev/null; then
  # Redis cannot listen on port 0: try random high ports until one binds.
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    "${server_pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --protected-mode no --loglevel warning >"$tmp/redis.log" 2>&1 &
    pid=$!
    for _ in $(seq 40); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
      pids+=("$pid")
      port_redis=$port
      pid_redis=$pid
      have_redis=1
      break
    fi
  done
fi

# Server CPU time (user + system, all threads) in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)
json_field() { grep -o "\"$1\": [^,}]*" "$2" | head -n1 | awk '{ print $2 }' | tr -d '"'; }

results=$tmp/results.tsv  # round load server rps mbps p50 p99 cpu_us_per_req errors
# run ROUND LOAD SERVER BENCH-ARGS...
run() {
  local round=$1 load=$2 server=$3
  shift 3
  local pid_var=pid_$server port_var=port_$server
  local before after
  before=$(cpu_ticks "${!pid_var}")
  "${load_pin[@]}" "$bin/cmdwire-bench" --connect "127.0.0.1:${!port_var}" --json \
    --duration "$duration" --warmup "$warmup" "$@" >"$tmp/run.json" || true
  after=$(cpu_ticks "${!pid_var}")
  local replies
  replies=$(json_field replies_with_warmup "$tmp/run.json")  # the CPU ticks span the warm-up too
  local cpu_us
  cpu_us=$(awk -v t=$((after - before)) -v r="${replies:-0}" -v hz="$ticks_per_s" \
    'BEGIN { printf "%.2f", (r > 0 ? t * 1e6 / hz / r : 0) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$load" "$server" \
    "$(json_field rps "$tmp/run.json")" "$(json_field mb_per_s "$tmp/run.json")" \
    "$(json_field p50_us "$tmp/run.json")" "$(json_field p99_us "$tmp/run.json")" "$cpu_us" \
    "$(json_field errors "$tmp/run.json")" >>"$results"
}

# The matrix of issue 4: name conns depth payload.
loads=("latency 1 1 16" "many 16 1 16" "pipelined 16 32 16" "bulk 4 4 65536" "typed 16 32 200")

echo "bench: $rounds rounds of ${duration}s runs (warm-up ${warmup}s); redis: $have_redis"
for ((round = 1; round <= rounds; ++round)); do
  for spec in "${loads[@]}"; do
    read -r load conns depth size <<<"$spec"
    shape=(--conns "$conns" --depth "$depth")
    command=ECHO
    [[ $load == typed ]] && command=STRUCT
    # Alternate who goes first, so neither server always runs on a cooler machine.
    if ((round % 2)); then order=(cmdwire yardstick); else order=(yardstick cmdwire); fi
    if [[ -n $before ]]; then
      if ((round % 2)); then order=(cmdwire before yardstick); else order=(before yardstick cmdwire); fi
    fi
    for server in "${order[@]}"; do
      if [[ $server == cmdwire || $server == before ]]; then
        run "$round" "$load" "$server" "${shape[@]}" --command "$command" --payload-size "$size"
      else
        run "$round" "$load" yardstick "${shape[@]}" --raw-echo --payload-size "$size"
      fi
    done
    if ((have_redis)) && [[ $load == latency || $load == many || $load == pipelined ]]; then
      if ((round % 2)); then order=(cmdwire redis); else order=(redis cmdwire); fi
      for server in "${order[@]}"; do
        if [[ $server == cmdwire ]]; then
          run "$round" "ping-$load" cmdwire "${shape[@]}" --command PING
        else
          run "$round" "ping-$load" redis "${shape[@]}" --raw 'PING\r\n' --expect '+PONG\r\n'
        fi
      done
    fi
  done
  # Out-of-order replies (HELLO): what negotiating costs pipelined sync commands, and what it
  # buys PINGs that share their connections with a slow async call.
  run "$round" ooo-echo-off cmdwire --conns 16 --depth 32 --command ECHO --payload-size 16
  run "$round" ooo-echo-on cmdwire --conns 16 --depth 32 --command ECHO --payload-size 16 --hello
  run "$round" ooo-ping-off cmdwire --conns 16 --depth 32 --command PING
  run "$round" ooo-ping-on cmdwire --conns 16 --depth 32 --command PING --hello
  run "$round" mixed-off cmdwire --conns 16 --depth 32 --command PING --mix-sleep 5
  run "$round" mixed-on cmdwire --conns 16 --depth 32 --command PING --mix-sleep 5 --hello
  echo "bench: round $round done ($((SECONDS - started)) s)"
done

# ---- is cmdwire-bench the bottleneck? Drive redis-server with it and with redis-benchmark,
# same shape, same pinning.
client_check=""
if ((have_redis)) && command -v redis-benchmark >/dev/null; then
  ours=() theirs=()
  for ((round = 1; round <= rounds; ++round)); do
    run "$round" client-check redis --conns 16 --depth 32 --raw 'PING\r\n' --expect '+PONG\r\n'
    ours+=("$(tail -n1 "$results" | cut -f4)")
    n=$(awk -v r="${ours[-1]}" -v d="$duration" 'BEGIN { printf "%d", r * d }')
    line=$("${load_pin[@]}" redis-benchmark -p "$port_redis" -t ping_inline -c 16 -P 32 \
      -n "$((n > 100000 ? n : 100000))" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' |
      tail -n1)
    theirs+=("$(grep -o '[0-9.]* requests per second' <<<"$line" | awk '{ print $1 }')")
  done
  client_check=$(printf '%s\n' "${ours[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  client_check+=" $(printf '%s\n' "${theirs[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
fi

# ---- the table
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# values LOAD SERVER COLUMN: one value per round
values() { awk -F'\t' -v l="$1" -v s="$2" -v c="$3" '$2 == l && $3 == s { print $c }' "$results"; }
# ratios LOAD A B COLUMN: A/B per round
ratios() {
  awk -F'\t' -v l="$1" -v a="$2" -v b="$3" -v c="$4" '
    $2 == l && $3 == a { x[$1] = $c } $2 == l && $3 == b { y[$1] = $c }
    END { for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$results"
}
errors_total=$(awk -F'\t' '{ s += $9 } END { print s + 0 }' "$results")

table=$tmp/table.md
{
  echo "| load | conns × depth | payload | cmdwire | yardstick | ratio (median of rounds) | target | met | p50 / p99 µs cmdwire | p50 / p99 µs yardstick | server CPU µs/req cmdwire / yardstick |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  row() {  # row LOAD SHAPE PAYLOAD CMD_SERVER OTHER UNIT TARGET
    local load=$1 shape=$2 payload=$3 a=$4 b=$5 unit=$6 target=$7 col=4
    [[ $unit == MB/s ]] && col=5
    local va vb r ca cb
    va=$(values "$load" "$a" "$col" | median)
    vb=$(values "$load" "$b" "$col" | median)
    r=$(ratios "$load" "$a" "$b" "$col" | median)
    ca=$(values "$load" "$a" 8 | median)
    cb=$(values "$load" "$b" 8 | median)
    local met=—
    [[ $target != — ]] && met=$(awk -v r="$r" -v t="${target#≥ }" 'BEGIN { print ((r >= t) ? "yes" : "**no**") }')
    printf '| %s | %s | %s | %.0f %s | %.0f %s | %.2f | %s | %s | %.0f / %.0f | %.0f / %.0f | %.2f / %.2f |\n' \
      "$load" "$shape" "$payload" "$va" "$unit" "$vb" "$unit" "$r" "$target" "$met" \
      "$(values "$load" "$a" 6 | median)" "$(values "$load" "$a" 7 | median)" \
      "$(values "$load" "$b" 6 | median)" "$(values "$load" "$b" 7 | median)" "$ca" "$cb"
  }
  row latency "1 × 1" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.85"
  row many "16 × 1" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.85"
  row pipelined "16 × 32" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.85"
  row bulk "4 × 4" "ECHO 64 KiB" cmdwire yardstick MB/s "≥ 0.9"
  row typed "16 × 32" "STRUCT ~200 B vs echo 200 B" cmdwire yardstick req/s "—"
  if ((have_redis)); then
    echo
    echo "| load | conns × depth | payload | cmdwire PING | redis-server PING | ratio (median of rounds) | target | met | p50 / p99 µs cmdwire | p50 / p99 µs redis | server CPU µs/req cmdwire / redis |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    row ping-latency "1 × 1" PING cmdwire redis req/s "≥ 1.0"
    row ping-many "16 × 1" PING cmdwire redis req/s "≥ 1.0"
    row ping-pipelined "16 × 32" PING cmdwire redis req/s "≥ 1.0"
  fi
} >"$table"

{
  echo
  echo "Out-of-order replies (\`--hello\`: HELLO ooo, requests with id=), same rounds, 16 conns × 32 in flight:"
  echo
  echo "| load | with HELLO | without | ratio with ÷ without (median of rounds) | target | p50 / p99 µs with | p50 / p99 µs without |"
  echo "|---|---|---|---|---|---|---|"
  for pair in "ooo-echo ECHO 16 B" "ooo-ping PING" "mixed PING, 1 SLEEP 5 among 31 PINGs per connection"; do
    read -r key what <<<"$pair"
    target="≥ 0.95"
    [[ $key == mixed ]] && target="—"
    printf '| %s | %.0f req/s | %.0f req/s | %.2f | %s | %.0f / %.0f | %.0f / %.0f |\n' "$what" \
      "$(values "$key-on" cmdwire 4 | median)" "$(values "$key-off" cmdwire 4 | median)" \
      "$(awk -F'\t' -v a="$key-on" -v b="$key-off" '
          $2 == a { x[$1] = $4 } $2 == b { y[$1] = $4 }
          END { for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$results" | median)" \
      "$target" \
      "$(values "$key-on" cmdwire 6 | median)" "$(values "$key-on" cmdwire 7 | median)" \
      "$(values "$key-off" cmdwire 6 | median)" "$(values "$key-off" cmdwire 7 | median)"
  done
} >>"$table"

if [[ -n $before ]]; then
  {
    echo
    echo "Before and after, same rounds: this build ($(git rev-parse --short HEAD)) and \`$before\` ($("$before" --version 2>/dev/null | head -n1)), each ÷ the yardstick (req/s; MB/s for bulk), median of rounds."
    echo
    echo "| load | after ÷ yardstick | before ÷ yardstick | after ÷ before | server CPU µs/req after / before |"
    echo "|---|---|---|---|---|"
    for load in latency many pipelined bulk typed; do
      col=4
      [[ $load == bulk ]] && col=5
      printf '| %s | %.2f | %.2f | %.2f | %.2f / %.2f |\n' "$load" \
        "$(ratios "$load" cmdwire yardstick "$col" | median)" \
        "$(ratios "$load" before yardstick "$col" | median)" \
        "$(ratios "$load" cmdwire before "$col" | median)" \
        "$(values "$load" cmdwire 8 | median)" "$(values "$load" before 8 | median)"
    done
  } >>"$table"
fi

echo
cat "$table"
if [[ -n $client_check ]]; then
  read -r ours theirs <<<"$client_check"
  client_line="Load generator check (redis-server PING_INLINE, 16 conns × pipeline 32, median of $rounds): cmdwire-bench $(printf '%.0f' "$ours") req/s, redis-benchmark $(printf '%.0f' "$theirs") req/s (ratio $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'))."
  echo
  echo "$client_line"
fi
echo
echo "errors across all runs: $errors_total"

codec=""
codec_ratios=""
if ((have_codec_bench)); then
  # Medians of 3 repetitions, CPU time in ns: name ns bytes=N.
  codec_raw=$("${load_pin[@]}" "$bin/cmdwire-codec-bench" --benchmark_min_time=0.1 \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>/dev/null |
    awk '/^(encode|decode)\/.*_median / {
      name = $1; sub(/_median$/, "", name)
      ns = $4 * ($5 == "us" ? 1000 : ($5 == "ms" ? 1e6 : 1))
      printf "%s %.1f %s\n", name, ns, ($7 ~ /^bytes=/ ? $7 : "") }')
  codec=$(awk '{ printf "| %s | %s ns | %s |\n", $1, $2, $3 }' <<<"$codec_raw")
  codec_ns() { awk -v n="$1" '$1 == n { print $2 }' <<<"$codec_raw"; }
  codec_ratio() { awk -v a="$(codec_ns "$1")" -v b="$(codec_ns "$2")" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
  enc_ratio=$(codec_ratio encode/cereal_portable_binary_reference encode/cereal_bin)
  dec_ratio=$(codec_ratio decode/cereal_portable_binary_reference decode/cereal_bin)
  dec_reused_ratio=$(codec_ratio decode/cereal_portable_binary_reference decode/cereal_bin_reused)
  codec_ratios="| encode, cmdwire's archive vs cereal's PortableBinaryOutputArchive | $(codec_ns encode/cereal_portable_binary_reference) ns | $(codec_ns encode/cereal_bin) ns | $enc_ratio× | ≥ 4× |
| decode into a new value vs cereal's PortableBinaryInputArchive | $(codec_ns decode/cereal_portable_binary_reference) ns | $(codec_ns decode/cereal_bin) ns | $dec_ratio× | ≥ 2× |
| decode into a reused value (as the server does) vs the same | $(codec_ns decode/cereal_portable_binary_reference) ns | $(codec_ns decode/cereal_bin_reused) ns | $dec_reused_ratio× | ≥ 2× |"
  echo "codec: encode ${enc_ratio}x, decode ${dec_ratio}x (new value), ${dec_reused_ratio}x (reused value) vs cereal's PortableBinary archives"
fi

idle=""
idle=$(bench/idle_memory.sh "$bin" 10000 2>&1) || idle="idle_memory.sh failed: $idle"
echo "$idle"

# ---- Unix-domain socket vs TCP loopback: one more cmdwire-server (same binary, same pinning)
# on unix:PATH, taking turns with the TCP one; PING and ECHO 16 B at 16 conns × depth 32.
unix_sock=$tmp/cmdwire.sock
"${server_pin[@]}" "$bin/cmdwire-server" --listen "unix:$unix_sock" --threads 1 --log-level warn \
  >"$tmp/unix.out" 2>"$tmp/unix.err" &
pids+=("$!")
for _ in $(seq 100); do
  [[ -S $unix_sock ]] && break
  sleep 0.05
done
unix_table=""
if [[ -S $unix_sock ]]; then
  unix_table="| load | TCP req/s | unix req/s | unix ÷ TCP (median of $rounds) |"$'\n'"|---|---|---|---|"
  for spec in "PING --command PING" "ECHO-16B --command ECHO --payload-size 16"; do
    read -r label args <<<"$spec"
    : >"$tmp/unix.tsv"
    for ((round = 1; round <= rounds; ++round)); do
      for where in "127.0.0.1:$port_cmdwire" "unix:$unix_sock"; do
        # shellcheck disable=SC2086  # args is a word list on purpose
        "${load_pin[@]}" "$bin/cmdwire-bench" --connect "$where" --json --conns 16 --depth 32 \
          --duration "$duration" --warmup "$warmup" $args >"$tmp/u.json" || true
        printf '%s\t%s\t%s\n' "$round" "$where" "$(json_field rps "$tmp/u.json")" >>"$tmp/unix.tsv"
      done
    done
    row=$(awk -F'\t' '
      $2 ~ /^unix:/ { u[$1] = $3; next } { t[$1] = $3 }
      END {
        n = 0
        for (r in u) if (t[r] > 0) { q[++n] = u[r] / t[r]; st += t[r]; su += u[r] }
        for (i = 2; i <= n; ++i) {  # insertion sort: mawk has no asort
          v = q[i]; j = i - 1
          while (j >= 1 && q[j] > v) { q[j + 1] = q[j]; --j }
          q[j + 1] = v
        }
        printf "%.0f | %.0f | %.2f", st / n, su / n, q[int((n + 1) / 2)]
      }' "$tmp/unix.tsv")
    unix_table+=$'\n'"| $label | $row |"
  done
  echo
  echo "$unix_table"
fi

# ---- the library's callers: 16 threads making blocking ECHO calls through one client vs a
# channel of 4 connections, alternating rounds (cmdwire-caller-bench).
caller_lines=$("${load_pin[@]}" "$bin/cmdwire-caller-bench" --connect "127.0.0.1:$port_cmdwire" \
  --callers 16 --connections 4 --rounds "$rounds" --duration "$duration" 2>&1) ||
  caller_lines="cmdwire-caller-bench failed: $caller_lines"
echo "$caller_lines"

# ---- scale-out: ECHO through HAProxy (deploy/haproxy.cfg, PROXY v2 and HEALTH checks) to three
# cmdwire-servers vs one cmdwire-server directly, alternating rounds. Informational: on two cores
# HAProxy and the three servers share CPU 0 with nothing to gain from a second machine.
haproxy_table=""
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)
if [[ -x $haproxy_bin ]]; then
  for s in 1 2 3; do
    start_server "ha$s" "$bin/cmdwire-server" --listen 127.0.0.1:0 --threads 1 --log-level warn \
      --proxy-protocol
  done
  for _ in 1 2 3 4 5; do
    front=$((20000 + RANDOM % 30000))
    CMDWIRE_FRONTEND="127.0.0.1:$front" CMDWIRE_S1="127.0.0.1:$port_ha1" \
      CMDWIRE_S2="127.0.0.1:$port_ha2" CMDWIRE_S3="127.0.0.1:$port_ha3" \
      "${server_pin[@]}" "$haproxy_bin" -db -f deploy/haproxy.cfg >"$tmp/haproxy.log" 2>&1 &
    pid_haproxy=$!
    for _ in $(seq 40); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$front") 2>/dev/null; then break; fi
      kill -0 "$pid_haproxy" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid_haproxy" 2>/dev/null; then
      pids+=("$pid_haproxy")
      port_haproxy=$front
      break
    fi
    unset pid_haproxy
  done
  if [[ -n ${port_haproxy:-} ]]; then
    ha_shape=(--conns 16 --depth 32 --command ECHO --payload-size 16)
    for ((round = 1; round <= rounds; round++)); do
      if ((round % 2)); then
        run "$round" scaleout haproxy "${ha_shape[@]}"
        run "$round" scaleout cmdwire "${ha_shape[@]}"
      else
        run "$round" scaleout cmdwire "${ha_shape[@]}"
        run "$round" scaleout haproxy "${ha_shape[@]}"
      fi
    done
    ha_ratio=$(ratios scaleout haproxy cmdwire 4 | median)
    ha_rps=$(printf '%.0f' "$(values scaleout haproxy 4 | median)")
    direct_rps=$(printf '%.0f' "$(values scaleout cmdwire 4 | median)")
    haproxy_table="| ECHO 16 B, 16 conns × 32 | $ha_rps req/s | $direct_rps req/s | $ha_ratio |"
    echo "scale-out: through HAProxy to 3 servers $ha_rps req/s, one server directly $direct_rps req/s, ratio $ha_ratio"
  fi
fi

# ==== latency vs throughput (bench/plot) ==== begin ==========================================
# Open loop (cmdwire-bench --rate-steps) at 10%, 20% ... 100% of each server's closed-loop
# maximum for PING at 16 conns x 32, measured just before with the same shape: cmdwire-server,
# the yardstick echoing a cmdwire PING frame's bytes, and redis-server if present. p99 against
# the achieved req/s goes to a gnuplot PNG next to $out (docs/bench/latency.png) and a section
# of PERFORMANCE.md. About 7 s per server. BENCH_LATENCY_STEP: seconds per step (0.5).
latency_step=${BENCH_LATENCY_STEP:-0.5}
latency_md=$tmp/latency.md
latency_png=$(dirname "$out")/bench/latency.png
latency_servers=(cmdwire yardstick)
((have_redis)) && latency_servers+=(redis)
declare -A latency_max=()
for server in "${latency_servers[@]}"; do
  case $server in
    cmdwire) latency_args=(--command PING) ;;
    yardstick) latency_args=(--raw 'PING 0\n' --expect 'PING 0\n') ;;  # the frame cmdwire gets
    redis) latency_args=(--raw 'PING\r\n' --expect '+PONG\r\n') ;;
  esac
  run 0 latency-max "$server" --conns 16 --depth 32 "${latency_args[@]}"
  max=$(values latency-max "$server" 4 | head -n1)
  if [[ -z $max ]] || awk -v m="$max" 'BEGIN { exit !(m < 100) }'; then
    echo "bench: latency vs throughput: no closed-loop maximum for $server; skipped" >&2
    continue
  fi
  latency_max[$server]=$max
  rates=$(awk -v m="$max" 'BEGIN { for (i = 1; i <= 10; ++i) printf "%s%.0f", (i > 1 ? "," : ""), m * i / 10 }')
  port_var=port_$server
  "${load_pin[@]}" "$bin/cmdwire-bench" --connect "127.0.0.1:${!port_var}" --csv --conns 16 \
    --depth 32 --warmup "$warmup" --duration "$latency_step" --rate-steps "$rates" \
    "${latency_args[@]}" >"$tmp/latency-$server.csv" 2>/dev/null || true
  # CSV: step,target_rps,command,requests,ok,errors,...,rps (11),...,p50_us (13),...,p99_us (15)
  awk -F, '$3 == "total" { print $11, $15, $13, $2, $6, $1 }' "$tmp/latency-$server.csv" \
    >"$tmp/latency-$server.dat"
done
if ((${#latency_max[@]} > 0)); then
  plotted=0
  if command -v gnuplot >/dev/null; then
    mkdir -p "$(dirname "$latency_png")"
    terminal=png
    gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo && terminal=pngcairo
    plots=()
    for server in "${latency_servers[@]}"; do
      [[ -s $tmp/latency-$server.dat ]] || continue
      case $server in
        cmdwire) title=cmdwire-server ;;
        yardstick) title="yardstick (bare Asio echo)" ;;
        redis) title=redis-server ;;
      esac
      plots+=("'$tmp/latency-$server.dat' using 1:2 with linespoints title '$title'")
    done
    if gnuplot <<GNUPLOT; then
set terminal $terminal size 900,540 noenhanced
set output '$latency_png'
set title 'PING p99 latency vs throughput (open loop, 16 conns x 32 in flight at most)'
set xlabel 'achieved req/s'
set ylabel 'p99 latency (us, from the intended send time)'
set logscale y
set grid
set key top left
plot $(IFS=,; echo "${plots[*]}")
GNUPLOT
      plotted=1
      echo "bench: wrote $latency_png"
    else
      echo "bench: gnuplot failed: no latency plot" >&2
    fi
  else
    echo "bench: gnuplot not found (scripts/install-deps gnuplot-nox): skipping the latency plot" >&2
  fi
  {
    echo "## Latency vs throughput"
    echo
    echo "Open loop (\`cmdwire-bench --rate-steps\`): PING at 10 %, 20 % … 100 % of each server's closed-loop maximum (16 conns × 32, measured just before), spread over 16 connections with at most 32 in flight each; ${warmup} s warm-up, then ${latency_step} s per step. Latency counts from each request's intended send time, so a server that falls behind shows its queueing (coordinated omission corrected). The yardstick echoes the bytes of a cmdwire PING frame (\`PING 0\\n\`). Spread-out requests arrive about one per read at the lower rates, while the closed-loop maximum has 32 per read, so per-request system calls (the server's and cmdwire-bench's alike) weigh far more here: the knee can come well below 100 %."
    echo
    ((plotted)) && { echo "![PING p99 latency vs achieved req/s, open loop](bench/latency.png)"; echo; }
    header="| % of max |"
    rule="|---|"
    for server in "${latency_servers[@]}"; do
      [[ -n ${latency_max[$server]:-} ]] || continue
      header+=" $server req/s (p50 / p99 µs) |"
      rule+="---|"
    done
    echo "$header"
    echo "$rule"
    for i in $(seq 10); do
      line="| $((i * 10)) % |"
      for server in "${latency_servers[@]}"; do
        [[ -n ${latency_max[$server]:-} ]] || continue
        line+=$(awk -v i="$i" 'NR == i { printf " %.0f (%.0f / %.0f)%s |", $1, $3, $2, ($5 > 0 ? ", " $5 " errors" : "") }' \
          "$tmp/latency-$server.dat")
      done
      echo "$line"
    done
    echo
    printf 'Closed-loop maxima (req/s):'
    for server in "${latency_servers[@]}"; do
      [[ -n ${latency_max[$server]:-} ]] && printf ' %s %.0f;' "$server" "${latency_max[$server]}"
    done
    echo
  } >"$latency_md"
  cat "$latency_md"
fi
# ==== latency vs throughput (bench/plot) ==== end ============================================

# ---- docs/PERFORMANCE.md
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src include bench server demo 2>/dev/null || commit+=" + uncommitted changes"
{
  echo "# Performance"
  echo
  echo "Produced by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit."
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); shared with other builds while it ran."
  echo
  echo "## Method"
  echo
  echo "- Release build. Each server runs one I/O thread pinned to CPU 0 (\`taskset -c 0\`); cmdwire-bench (one load thread) is pinned to CPU 1."
  echo "- All servers start first, then take turns load by load ($rounds rounds, order alternating per round); each run is ${warmup} s warm-up + ${duration} s measured, closed loop."
  echo "- Ratios are cmdwire ÷ other server **within one round**, median over rounds: the VM drifts too much for absolute numbers across runs."
  echo "- cmdwire-bench verifies every reply; ECHO and the yardstick compare the bytes, PING checks \`PONG\`, STRUCT checks the exact summary. MB/s counts request payload bytes."
  echo "- Server CPU µs/req: user + system time from \`/proc/PID/stat\` over the whole run divided by the replies of the run (10 ms ticks): independent of how fast the load generator is."
  echo "- The yardstick is \`cmdwire-baseline-echo\`: a bare Asio C++20 coroutine echo server (read_some → write back). The typed row compares STRUCT (decode cereal, summarize, encode) with echoing 200 raw bytes."
  echo
  echo "## Results"
  echo
  cat "$table"
  echo
  [[ -n ${client_line:-} ]] && { echo "$client_line"; echo; }
  echo "Errors across all runs: $errors_total."
  echo
  if [[ -n $unix_table ]]; then
    echo "## Unix-domain socket vs TCP loopback"
    echo
    echo "The same cmdwire-server binary twice, one on \`--listen unix:PATH\`, taking turns; cmdwire-bench at 16 conns × depth 32 (mean req/s over rounds; the ratio is the median of same-round ratios)."
    echo
    echo "$unix_table"
    echo
  fi
  echo "## Client vs channel"
  echo
  echo "\`cmdwire-caller-bench\`: 16 threads make blocking typed ECHO calls (16 B) through one \`client\` (one connection, out-of-order replies) and through a \`channel\` of 4 connections, alternating; the load and the channel's I/O thread share CPU 1."
  echo
  echo '```'
  echo "$caller_lines"
  echo '```'
  echo
  if [[ -n $haproxy_table ]]; then
    echo "## Scale-out through HAProxy"
    echo
    echo "cmdwire-bench through HAProxy 2.6 (\`deploy/haproxy.cfg\`: mode tcp, leastconn, HEALTH checks every 200 ms, PROXY v2 to servers started with \`--proxy-protocol\`) to three cmdwire-servers, against one cmdwire-server directly; alternating, $rounds rounds, median. HAProxy and all servers are pinned to CPU 0 and the load to CPU 1, so on this two-core machine the row measures HAProxy's extra hop, not scaling: informational (docs/DEPLOY.md)."
    echo
    echo "| load | through HAProxy to 3 servers | 1 server directly | ratio HAProxy ÷ direct (median of rounds) |"
    echo "|---|---|---|---|"
    echo "$haproxy_table"
    echo
  fi
  if [[ -s $tmp/latency.md ]]; then  # the latency vs throughput block
    cat "$tmp/latency.md"
    echo
  fi
  echo "## Memory per idle connection"
  echo
  echo "\`bench/idle_memory.sh\`: 10,000 connections each send one request, then stay open silent; server RSS growth ÷ 10,000 (target ≤ 16 KiB)."
  echo
  echo '```'
  echo "$idle"
  echo '```'
  echo
  echo "## Allocations per request"
  echo
  echo "\`tests/alloc_test.cpp\` counts every \`operator new\` in the process across 16,000 pipelined ECHO/PING requests on 16 connections after warm-up (budget < 0.01 per request); it runs with \`make test\`."
  if [[ -f bench/notes.md ]]; then
    echo
    cat bench/notes.md
  fi
  if [[ -n $codec ]]; then
    echo
    echo "## Codecs (Google Benchmark, bench/codec_bench.cpp)"
    echo
    echo "The STRUCT/PROTO demo payload, 3 levels deep (the typed load's ~200 B); CPU time, median of 3 repetitions, load pinned to CPU 1. \`*_reference\` runs cereal's own PortableBinary archives (through a std::ostream/istream on the same reused buffers, decode guarded as cmdwire used to); \`cereal_bin\` is cmdwire's archive producing the same bytes (include/cmdwire/detail/binary_archive.hpp)."
    echo
    echo "| cereal binary, same value | cereal | cmdwire | speed-up | target |"
    echo "|---|---|---|---|---|"
    echo "$codec_ratios"
    echo
    echo "| benchmark | CPU time | bytes |"
    echo "|---|---|---|"
    echo "$codec"
  fi
} >"$out"
echo
echo "bench: wrote $out in $((SECONDS - started)) s"
