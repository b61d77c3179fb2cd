#!/usr/bin/env bash
# `make bench`: Release build, then cmdwire-server, the bare-Asio yardstick and (if installed)
# redis-server take turns under the same loads, a few rounds; prints a markdown table of
# same-round ratios (median over rounds) and writes it, with method and machine, to
# docs/PERFORMANCE.md.
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (0.8 s per run), BENCH_WARMUP (0.25 s),
# BENCH_BUILD (build-release), BENCH_OUT (docs/PERFORMANCE.md), BENCH_NO_INSTALL=1.
# BENCH_BEFORE=path/to/an/older/cmdwire-server: that build takes turns too, and a second table
# gives the ratios of this build and of that one to the same yardstick, from the same rounds
# (how a change on the request path is measured: before and after in one run).
# With gRPC (libgrpc++-dev, installed below) typed PROTO also takes turns with a gRPC server on the
# same messages. The machine's load is recorded before and after the runs; when anything else
# used the CPU, no target is judged (see `verdict`).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-0.8}
warmup=${BENCH_WARMUP:-0.25}
build=${BENCH_BUILD:-build-release}
out=${BENCH_OUT:-docs/PERFORMANCE.md}
bin=$build/bin
started=$SECONDS
# Before the build, whose compilers would count in the load average after it.
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- optional tools: Google Benchmark for the codec table, Redis for the PING yardstick and
# redis-benchmark as an independent load generator, gRPC for the PROTO vs gRPC table, ccache for
# a quicker cold build. Without them those rows are skipped.
if [[ -z ${BENCH_NO_INSTALL:-} ]]; then
  scripts/install-deps libbenchmark-dev redis-server redis-tools gnuplot-nox libgrpc++-dev \
    protobuf-compiler-grpc ccache ||
    echo "bench: optional packages could not be installed; their rows are skipped" >&2
fi

# ccache only for a build dir configured here for the first time: adding a launcher to an existing
# one would recompile all of it once.
launcher=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target cmdwire-server cmdwire-bench cmdwire-baseline-echo \
  cmdwire-caller-bench
have_codec_bench=0
if cmake --build "$build" -j "${JOBS:-2}" --target cmdwire-codec-bench >/dev/null 2>&1; then
  have_codec_bench=1
fi
# ---- gRPC peer (bench/grpc): built only when CMake found gRPC.
have_grpc=0
if cmake --build "$build" -j "${JOBS:-2}" --target cmdwire-grpc-server cmdwire-grpc-bench \
  >"$build/grpc-build.log" 2>&1; then
  have_grpc=1
else
  echo "bench: no gRPC peer (libgrpc++-dev missing? see $build/grpc-build.log): PROTO vs gRPC skipped" >&2
fi

built_after=$((SECONDS - started))  # package check and build; the rest is the runs

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
if ((have_grpc)); then
  # gRPC sizes its own threads; pinned like the others, they share CPU 0.
  start_server grpc "$bin/cmdwire-grpc-server" --listen 127.0.0.1:0
fi
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

# cpu_ticks PID VAR: the process's CPU time (user + system, all threads) in clock ticks, into VAR.
# Builtins only: forks cost ~20 ms each on this VM, and a run used to spend ~35 of them (0.4 s)
# on its bookkeeping.
cpu_ticks() {
  local stat f
  read -r stat <"/proc/$1/stat"
  read -r -a f <<<"${stat##*) }"  # fields after the command name, which may hold spaces
  printf -v "$2" '%s' $((f[11] + f[12]))
}
ticks_per_s=$(getconf CLK_TCK)
json_field() { grep -o "\"$1\": [^,}]*" "$2" | head -n1 | awk '{ print $2 }' | tr -d '"'; }

# ---- machine state. The bench needs both cores to itself (servers on CPU 0, load on CPU 1):
# anything else running skews the ratios, so it is measured and, when found, no target is judged.
# CPU ticks (user + system, reaped children included) of every process outside this script's
# process tree. Kernel threads are left out: under load they mostly carry our own loopback
# traffic. Summing per process rather than reading /proc/stat keeps that softirq work out too.
others_ticks() {
  # A process may end between the glob and its read: cat then fails, which pipefail would make
  # fatal.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v self=$$ '
    {
      rest = $0
      sub(/^[0-9]+ \(.*\) /, "", rest)  # comm may hold spaces and parentheses
      split(rest, f, " ")
      parent[$1] = f[2]
      ticks[$1] = f[12] + f[13] + f[14] + f[15]
    }
    END {
      for (p in ticks) {
        q = p + 0
        while (q > 2 && q != self) q = parent[q] + 0
        if (q < 2) s += ticks[p]  # reached init: neither ours (self) nor a kernel thread (2)
      }
      print s + 0
    }'
}
# others_pct TICKS-BEFORE TICKS-AFTER SECONDS: their CPU as a percentage of one core.
others_pct() {
  awk -v d=$(($2 - $1)) -v hz="$ticks_per_s" -v s="$3" \
    'BEGIN { v = (s > 0 ? d / hz / s * 100 : 0); printf "%.0f", (v < 0 ? 0 : v) }'
}
# others_over_1s: others_pct over one second of this script doing nothing.
others_over_1s() {
  local a b t0=$EPOCHREALTIME
  a=$(others_ticks)
  sleep 1
  b=$(others_ticks)
  others_pct "$a" "$b" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
}
# Busy means: a 1-min load average above busy_load before we started, or the others using more
# than busy_pct % of a core in either 1 s sample or on average during the runs.
busy_load=0.5
busy_pct=10
machine_busy=0
busy_reasons=()
# verdict RATIO TARGET: the "met" column. Every target verdict goes through here, so that a busy
# machine judges nothing.
# verdict_at_most VALUE LIMIT: the same for a target that is a ceiling (server CPU per request).
verdict_at_most() {
  if ((machine_busy)); then
    echo "not judged (machine busy)"
  else
    awk -v v="$1" -v t="$2" 'BEGIN { print ((v <= t) ? "yes" : "**no**") }'
  fi
}
verdict() {
  local r=$1 target=$2
  if [[ $target == — ]]; then
    echo —
  elif ((machine_busy)); then
    echo "not judged (machine busy)"
  else
    awk -v r="$r" -v t="${target#≥ }" 'BEGIN { print ((r >= t) ? "yes" : "**no**") }'
  fi
}

results=$tmp/results.tsv  # round load server rps mbps p50 p99 cpu_us_per_req errors
# run ROUND LOAD SERVER BENCH-ARGS...; `loadgen=PATH run ...` drives the server with another load
# generator that takes cmdwire-bench's options and prints its --json fields (cmdwire-grpc-bench).
run() {
  local round=$1 load=$2 server=$3
  shift 3
  local pid_var=pid_$server port_var=port_$server
  local before after
  cpu_ticks "${!pid_var}" before
  "${load_pin[@]}" "${loadgen:-$bin/cmdwire-bench}" --connect "127.0.0.1:${!port_var}" --json \
    --duration "$duration" --warmup "$warmup" "$@" >"$tmp/run.json" || true
  cpu_ticks "${!pid_var}" after
  # Every field in one awk, each the first `"key": value` as json_field reads it. CPU per request
  # divides by replies_with_warmup: the CPU ticks span the warm-up too.
  awk -v round="$round" -v load="$load" -v server="$server" -v t=$((after - before)) \
    -v hz="$ticks_per_s" '
    {
      while (match($0, /"[a-z0-9_]+": [^,}]*/)) {
        kv = substr($0, RSTART, RLENGTH)
        $0 = substr($0, RSTART + RLENGTH)
        k = kv; sub(/": .*/, "", k); sub(/^"/, "", k)
        v = kv; sub(/^"[^"]*": /, "", v); gsub(/"/, "", v)
        if (!(k in f)) f[k] = v
      }
    }
    END {
      r = f["replies_with_warmup"] + 0
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", round, load, server, f["rps"],
        f["mb_per_s"], f["p50_us"], f["p99_us"], (r > 0 ? t * 1e6 / hz / r : 0), f["errors"]
    }' "$tmp/run.json" >>"$results"
}

# The matrix of issue 4: name conns depth payload.
loads=("latency 1 1 16" "many 16 1 16" "pipelined 16 32 16" "echo283 16 32 283" "bulk 4 4 65536"
  "typed 16 32 200")

# ---- machine state before the runs: the build is done, the servers are up and idle.
load_before_runs=$(cut -d' ' -f1-3 /proc/loadavg)
others_before=$(others_over_1s)
machine_before="load average $load_at_start at the start (before the build), $load_before_runs just before the runs; other processes used $others_before % of a core over 1 s just before the runs"
echo "bench: machine before: $machine_before"
runs_t0=$EPOCHREALTIME
runs_ticks0=$(others_ticks)

# echo_bytes LOAD COMMAND SIZE: what the yardstick echoes per request: the whole cmdwire request
# frame (`ECHO 16\n` + 16 B is 24 B), so both servers read the same bytes per request. The bulk
# row compares payload MB/s, so there it echoes the payload. STRUCT's body at --payload-size
# 200 is the 220 B three-level ComplexData (cmdwire-bench reports it as payload_size).
echo_bytes() {
  local load=$1 command=$2 size=$3
  [[ $load == bulk ]] && { echo "$size"; return; }
  [[ $load == typed ]] && size=220
  echo $((${#command} + 1 + ${#size} + 1 + size))
}

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
        run "$round" "$load" yardstick "${shape[@]}" --raw-echo --payload-size "$(echo_bytes "$load" "$command" "$size")"
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
  # buys PINGs that share their connections with a slow async call. Two rounds are enough for
  # these informational rows, and keep make bench within its three minutes.
  if ((round <= 2)); then
  run "$round" ooo-echo-off cmdwire --conns 16 --depth 32 --command ECHO --payload-size 16
  run "$round" ooo-echo-on cmdwire --conns 16 --depth 32 --command ECHO --payload-size 16 --hello
  run "$round" ooo-ping-off cmdwire --conns 16 --depth 32 --command PING
  run "$round" ooo-ping-on cmdwire --conns 16 --depth 32 --command PING --hello
  run "$round" mixed-off cmdwire --conns 16 --depth 32 --command PING --mix-sleep 5
  run "$round" mixed-on cmdwire --conns 16 --depth 32 --command PING --mix-sleep 5 --hello
  fi
  echo "bench: round $round done ($((SECONDS - started)) s)"
done

# ---- typed PROTO vs gRPC (bench/grpc): cmdwire-server's PROTO and cmdwire-grpc-server's
# Demo/Summarize take turns on the same Complex (~200 B) -> Summary, each driven by its own
# closed-loop generator with the same conns x depth, duration, warm-up and pinning; order
# alternating per round. The generators' own CPU share is kept too: near 100 % of its core means
# the generator, not the server, set the pace.
grpc_gen_cpu=$tmp/grpc-gen-cpu.tsv  # load server cpu-% of the generator over its whole run
if ((have_grpc)); then
  gen_c0=0 gen_c1=0
  # reaped_ticks VAR: CPU ticks of this script's waited-for children (the generators), into VAR.
  reaped_ticks() {
    local stat f
    read -r stat <"/proc/$$/stat"
    read -r -a f <<<"${stat##*) }"
    printf -v "$1" '%s' $((f[13] + f[14]))
  }
  for ((round = 1; round <= rounds; ++round)); do
    for spec in "proto-pipelined 16 32" "proto-latency 1 1"; do
      read -r load conns depth <<<"$spec"
      if ((round % 2)); then order=(cmdwire grpc); else order=(grpc cmdwire); fi
      for server in "${order[@]}"; do
        gen_t0=$EPOCHREALTIME
        reaped_ticks gen_c0
        if [[ $server == cmdwire ]]; then
          run "$round" "$load" cmdwire --conns "$conns" --depth "$depth" --command PROTO \
            --payload-size 200
        else
          loadgen=$bin/cmdwire-grpc-bench run "$round" "$load" grpc --conns "$conns" \
            --depth "$depth" --payload-size 200
        fi
        reaped_ticks gen_c1
        awk -v l="$load" -v s="$server" -v d=$((gen_c1 - gen_c0)) -v hz="$ticks_per_s" \
          -v a="$gen_t0" -v b="$EPOCHREALTIME" \
          'BEGIN { printf "%s\t%s\t%.0f\n", l, s, d / hz / (b - a) * 100 }' >>"$grpc_gen_cpu"
      done
    done
  done
  echo "bench: PROTO vs gRPC done ($((SECONDS - started)) s)"
fi

# ---- is cmdwire-bench the bottleneck? Drive redis-server with it and with redis-benchmark,
# same shape, same pinning.
client_check=""
if ((have_redis)) && command -v redis-benchmark >/dev/null; then
  ours=() theirs=()
  # One round: a sanity check of the tool, not a comparison between servers.
  for ((round = 1; round <= 1; ++round)); do
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
# median: of one number a line. An insertion sort in the awk, as a `sort` process would cost a fork.
median() { awk '{ for (i = NR - 1; i >= 1 && a[i] + 0 > $1 + 0; --i) a[i + 1] = a[i]; a[i + 1] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# values LOAD SERVER COLUMN: one value per round
values() { awk -F'\t' -v l="$1" -v s="$2" -v c="$3" '$2 == l && $3 == s { print $c }' "$results"; }
# ratios LOAD A B COLUMN: A/B per round
ratios() {
  awk -F'\t' -v l="$1" -v a="$2" -v b="$3" -v c="$4" '
    $2 == l && $3 == a { x[$1] = $c } $2 == l && $3 == b { y[$1] = $c }
    END { for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$results"
}
# median_of LOAD SERVER COLUMN [OTHER]: the median over rounds of SERVER's COLUMN or, with OTHER,
# of the same-round ratios SERVER ÷ OTHER; what `values | median` and `ratios | median` give, in
# one process instead of two (the tables need ~100 of them, at ~20 ms a fork on this VM).
median_of() {
  awk -F'\t' -v l="$1" -v a="$2" -v c="$3" -v b="${4:-}" '
    $2 == l && $3 == a { x[$1] = $c; if (b == "") v[++n] = $c }
    b != "" && $2 == l && $3 == b { y[$1] = $c }
    END {
      if (b != "") for (r in x) if (r in y && y[r] > 0) v[++n] = sprintf("%.3f", x[r] / y[r])
      for (i = 2; i <= n; ++i) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; --j) v[j + 1] = v[j]
        v[j + 1] = t
      }
      if (n == 0) print 0; else if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2
    }' "$results"
}
errors_total=$(awk -F'\t' '{ s += $9 } END { print s + 0 }' "$results")

# ---- the tables, written by report_tables once every run is done: their verdicts depend on what
# else ran on the machine meanwhile.
report_tables() {
table=$tmp/table.md
{
  echo "| load | conns × depth | payload | cmdwire | yardstick | ratio (median of rounds) | target | met | p50 / p99 µs cmdwire | p50 / p99 µs yardstick | server CPU µs/req cmdwire / yardstick |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  row() {  # row LOAD SHAPE PAYLOAD CMD_SERVER OTHER UNIT TARGET
    local load=$1 shape=$2 payload=$3 a=$4 b=$5 unit=$6 target=$7 col=4
    [[ $unit == MB/s ]] && col=5
    local va vb r ca cb
    va=$(median_of "$load" "$a" "$col")
    vb=$(median_of "$load" "$b" "$col")
    r=$(median_of "$load" "$a" "$col" "$b")
    ca=$(median_of "$load" "$a" 8)
    cb=$(median_of "$load" "$b" 8)
    local met
    met=$(verdict "$r" "$target")
    printf '| %s | %s | %s | %.0f %s | %.0f %s | %.2f | %s | %s | %.0f / %.0f | %.0f / %.0f | %.2f / %.2f |\n' \
      "$load" "$shape" "$payload" "$va" "$unit" "$vb" "$unit" "$r" "$target" "$met" \
      "$(median_of "$load" "$a" 6)" "$(median_of "$load" "$a" 7)" \
      "$(median_of "$load" "$b" 6)" "$(median_of "$load" "$b" 7)" "$ca" "$cb"
  }
  row latency "1 × 1" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.85"
  row many "16 × 1" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.85"
  row pipelined "16 × 32" "ECHO 16 B" cmdwire yardstick req/s "≥ 0.9"
  row echo283 "16 × 32" "ECHO 283 B" cmdwire yardstick req/s "≥ 0.8"
  row bulk "4 × 4" "ECHO 64 KiB" cmdwire yardstick MB/s "≥ 0.9"
  row typed "16 × 32" "STRUCT ~220 B vs echo 220 B" cmdwire yardstick req/s "≥ 0.3"
  if ((have_redis)); then
    echo
    echo "| load | conns × depth | payload | cmdwire PING | redis-server PING | ratio (median of rounds) | target | met | p50 / p99 µs cmdwire | p50 / p99 µs redis | server CPU µs/req cmdwire / redis |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    row ping-latency "1 × 1" PING cmdwire redis req/s "≥ 1.0"
    row ping-many "16 × 1" PING cmdwire redis req/s "≥ 1.0"
    row ping-pipelined "16 × 32" PING cmdwire redis req/s "≥ 1.0"
  fi
  # Server CPU per request: independent of how fast the load generator is.
  echo
  echo "| server CPU per request, 16 × 32 | cmdwire | bound | target | met |"
  echo "|---|---|---|---|---|"
  local echo_cpu_ratio struct_cpu
  echo_cpu_ratio=$(median_of pipelined cmdwire 8 yardstick)
  printf '| ECHO 16 B, cmdwire ÷ yardstick (median of same-round ratios) | %.2f | 1.2 | ≤ 1.2 | %s |\n' \
    "$echo_cpu_ratio" "$(verdict_at_most "$echo_cpu_ratio" 1.2)"
  struct_cpu=$(median_of typed cmdwire 8)
  if ((have_codec_bench)); then
    # The value's decode (into the reused request, as the server does) + its encode + 0.25 µs.
    local struct_bound
    struct_bound=$(awk -v d="$(codec_ns decode/cereal_bin_reused)" -v e="$(codec_ns encode/cereal_bin)" \
      'BEGIN { printf "%.2f", (d + e) / 1000 + 0.25 }')
    printf '| STRUCT 220 B, µs | %.2f | %s (decode %s ns + encode %s ns + 0.25 µs) | ≤ bound | %s |\n' \
      "$struct_cpu" "$struct_bound" "$(codec_ns decode/cereal_bin_reused)" \
      "$(codec_ns encode/cereal_bin)" "$(verdict_at_most "$struct_cpu" "$struct_bound")"
    # The 0.25 µs stands for what moving a request's bytes in and out costs; the yardstick
    # measures that in the same rounds (reading and writing the same 231 B, kernel included),
    # so this row says how much cmdwire adds beyond the codec and the bytes' own cost.
    local echo_floor
    echo_floor=$(awk -v d="$(codec_ns decode/cereal_bin_reused)" -v e="$(codec_ns encode/cereal_bin)" \
      -v y="$(median_of typed yardstick 8)" 'BEGIN { printf "%.2f", (d + e) / 1000 + y }')
    printf '| STRUCT 220 B, µs, against the codec + the yardstick echoing its bytes (informational) | %.2f | %s (codec as above + yardstick %.2f µs) | — | — |\n' \
      "$struct_cpu" "$echo_floor" "$(median_of typed yardstick 8)"
  fi
} >"$table"

{
  echo
  echo "Out-of-order replies (\`--hello\`: HELLO ooo, requests with id=), rounds 1 and 2, 16 conns × 32 in flight:"
  echo
  echo "| load | with HELLO | without | ratio with ÷ without (median of rounds) | target | p50 / p99 µs with | p50 / p99 µs without |"
  echo "|---|---|---|---|---|---|---|"
  for pair in "ooo-echo ECHO 16 B" "ooo-ping PING" "mixed PING, 1 SLEEP 5 among 31 PINGs per connection"; do
    read -r key what <<<"$pair"
    target="≥ 0.95"
    [[ $key == mixed ]] && target="—"
    printf '| %s | %.0f req/s | %.0f req/s | %.2f | %s | %.0f / %.0f | %.0f / %.0f |\n' "$what" \
      "$(median_of "$key-on" cmdwire 4)" "$(median_of "$key-off" cmdwire 4)" \
      "$(awk -F'\t' -v a="$key-on" -v b="$key-off" '
          $2 == a { x[$1] = $4 } $2 == b { y[$1] = $4 }
          END { for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$results" | median)" \
      "$target" \
      "$(median_of "$key-on" cmdwire 6)" "$(median_of "$key-on" cmdwire 7)" \
      "$(median_of "$key-off" cmdwire 6)" "$(median_of "$key-off" cmdwire 7)"
  done
} >>"$table"

if [[ -n $before ]]; then
  {
    echo
    echo "Before and after, same rounds: this build ($(git rev-parse --short HEAD)) and \`$before\` ($("$before" --version 2>/dev/null | head -n1)), each ÷ the yardstick (req/s; MB/s for bulk), median of rounds."
    echo
    echo "| load | after ÷ yardstick | before ÷ yardstick | after ÷ before | server CPU µs/req after / before |"
    echo "|---|---|---|---|---|"
    for load in latency many pipelined echo283 bulk typed; do
      col=4
      [[ $load == bulk ]] && col=5
      printf '| %s | %.2f | %.2f | %.2f | %.2f / %.2f |\n' "$load" \
        "$(median_of "$load" cmdwire "$col" yardstick)" \
        "$(median_of "$load" before "$col" yardstick)" \
        "$(median_of "$load" cmdwire "$col" before)" \
        "$(median_of "$load" cmdwire 8)" "$(median_of "$load" before 8)"
    done
  } >>"$table"
fi

echo
cat "$table"
if [[ -n $client_check ]]; then
  read -r ours theirs <<<"$client_check"
  client_line="Load generator check (redis-server PING_INLINE, 16 conns × pipeline 32, one run each): cmdwire-bench $(printf '%.0f' "$ours") req/s, redis-benchmark $(printf '%.0f' "$theirs") req/s (ratio $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'))."
  echo
  echo "$client_line"
fi
echo
echo "errors across all runs: $errors_total"

grpc_table=""
if ((have_grpc)); then
  grpc_table=$(
    echo "| load | conns × depth | payload | cmdwire PROTO | gRPC unary | ratio cmdwire ÷ gRPC (median of rounds) | target | met | p50 / p99 µs cmdwire | p50 / p99 µs gRPC | server CPU µs/req cmdwire / gRPC |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    row proto-pipelined "16 × 32" "Complex 216 B → Summary" cmdwire grpc req/s "≥ 10"
    row proto-latency "1 × 1" "Complex 216 B → Summary" cmdwire grpc req/s "≥ 1.5"
  )
  grpc_gen_line="Load generators' CPU, % of their core over each run (median of rounds): $(
    for load in proto-pipelined proto-latency; do
      printf '%s cmdwire-bench %.0f %%, cmdwire-grpc-bench %.0f %%; ' "$load" \
        "$(awk -F'\t' -v l="$load" '$1 == l && $2 == "cmdwire" { print $3 }' "$grpc_gen_cpu" | median)" \
        "$(awk -F'\t' -v l="$load" '$1 == l && $2 == "grpc" { print $3 }' "$grpc_gen_cpu" | median)"
    done | sed 's/; $/./')"
  echo
  echo "$grpc_table"
  echo
  echo "$grpc_gen_line"
fi
}

codec=""
if ((have_codec_bench)); then
  # Medians of 3 repetitions, CPU time in ns: name ns bytes=N.
  codec_raw=$("${load_pin[@]}" "$bin/cmdwire-codec-bench" --benchmark_min_time=0.05 \
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
  codec_row() {  # codec_row WHAT REFERENCE OURS RATIO
    printf '| %s | %s ns | %s ns | %s× | ≥ %s× | %s |\n' "$1" "$(codec_ns "$2")" "$(codec_ns "$3")" "$4" \
      "$5" "$(verdict "$4" "≥ $5")"
  }
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
    ha_ratio=$(median_of scaleout haproxy 4 cmdwire)
    ha_rps=$(printf '%.0f' "$(median_of scaleout haproxy 4)")
    direct_rps=$(printf '%.0f' "$(median_of scaleout cmdwire 4)")
    haproxy_table="| ECHO 16 B, 16 conns × 32 | $ha_rps req/s | $direct_rps req/s | $ha_ratio |"
    echo "scale-out: through HAProxy to 3 servers $ha_rps req/s, one server directly $direct_rps req/s, ratio $ha_ratio"
  fi
fi

# ==== latency vs throughput (bench/plot) ==== begin ==========================================
# Open loop (cmdwire-bench --rate-steps) at 10%, 20% ... 100% of each server's closed-loop
# maximum for PING at 16 conns x 32, measured just before with the same shape: cmdwire-server,
# the yardstick echoing a cmdwire PING frame's bytes, and redis-server if present. p99 against
# the achieved req/s goes to a gnuplot PNG next to $out (docs/bench/latency.png) and a section
# of PERFORMANCE.md. About 6 s per server. BENCH_LATENCY_STEP: seconds per step (0.4).
latency_step=${BENCH_LATENCY_STEP:-0.4}
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

# ---- machine state after the runs, and whether anything else used the CPU while they went on.
runs_ticks1=$(others_ticks)
runs_seconds=$(awk -v a="$runs_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
others_during=$(others_pct "$runs_ticks0" "$runs_ticks1" "$runs_seconds")
others_after=$(others_over_1s)
machine_after="load average $(cut -d' ' -f1-3 /proc/loadavg) just after the runs (their own load included); other processes used $others_during % of a core on average during the ${runs_seconds} s of runs and $others_after % over 1 s after them"
echo "bench: machine after: $machine_after"
if awk -v l="${load_at_start%% *}" -v t="$busy_load" 'BEGIN { exit !(l > t) }'; then
  busy_reasons+=("1-min load average ${load_at_start%% *} at the start (> $busy_load)")
fi
for when in before during after; do
  pct_var=others_$when
  if ((${!pct_var} > busy_pct)); then
    busy_reasons+=("other processes used ${!pct_var} % of a core $when the runs (> $busy_pct %)")
  fi
done
if ((${#busy_reasons[@]})); then
  machine_busy=1
  busy_line=$(printf '%s; ' "${busy_reasons[@]}")
  busy_line=${busy_line%; }
  echo "bench: MACHINE BUSY: $busy_line. No target is judged." >&2
fi
report_tables

# ---- docs/PERFORMANCE.md
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src include bench server demo 2>/dev/null || commit+=" + uncommitted changes"
{
  echo "# Performance"
  echo
  echo "Produced by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit."
  echo
  if ((machine_busy)); then
    echo "> **The machine was busy while this ran: $busy_line.** Other work competed for the two cores the bench pins its servers and load to, so the figures below are skewed and no target is judged (\`not judged (machine busy)\`)."
    echo
  fi
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); $( ((machine_busy)) && echo "**busy** (see above)" || echo "nothing else used more than $busy_pct % of a core while it ran")."
  echo
  echo "- Before: $machine_before."
  echo "- After: $machine_after."
  echo "- Time: $((SECONDS - started)) s in all, of which $built_after s for the package check and the build (a no-op when the Release build is up to date)."
  echo
  echo "## Method"
  echo
  echo "- Release build. Each server runs one I/O thread pinned to CPU 0 (\`taskset -c 0\`); cmdwire-bench (one load thread) is pinned to CPU 1."
  echo "- All servers start first, then take turns load by load ($rounds rounds, order alternating per round); each run is ${warmup} s warm-up + ${duration} s measured, closed loop."
  echo "- Ratios are cmdwire ÷ other server **within one round**, median over rounds: the VM drifts too much for absolute numbers across runs."
  echo "- cmdwire-bench verifies every reply; ECHO and the yardstick compare the bytes, PING checks \`PONG\`, STRUCT checks the exact summary. MB/s counts request payload bytes."
  echo "- Server CPU µs/req: user + system time from \`/proc/PID/stat\` over the whole run divided by the replies of the run (10 ms ticks): independent of how fast the load generator is."
  echo "- Machine state: the load average (\`/proc/loadavg\`), and the CPU time (user + system, reaped children included) of every process outside bench/run.sh's own process tree and not a kernel thread, summed from \`/proc/*/stat\`, over 1 s before the runs, over all the runs, and over 1 s after them. With a 1-min load average above $busy_load at the start or more than $busy_pct % of a core used by others in any of the three, the machine counts as busy and no target is judged."
  echo "- The yardstick is \`cmdwire-baseline-echo\`: a bare Asio C++20 coroutine echo server (read_some → write back). It echoes the same number of bytes as the cmdwire request frame it is compared with (\`ECHO 16\\n\` + 16 B = 24 B; STRUCT: \`STRUCT 220\\n\` + 220 B = 231 B); the bulk row compares payload MB/s. The typed row compares STRUCT (decode the cereal ComplexData, summarize, encode the Summary) with echoing those bytes."
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
  if [[ -n $grpc_table ]]; then
    echo "## Typed PROTO vs gRPC"
    echo
    echo "cmdwire-server's PROTO command against \`cmdwire-grpc-server\` (bench/grpc: gRPC $(pkg-config --modversion grpc++ 2>/dev/null || echo C++) callback API, \`cmdwire.demo.pb.Demo/Summarize\` generated from the same proto/demo.proto), both answering with \`demo::summarize\` on the same \`Complex\` chain (\`make_sample_proto\`, 216 B) and pinned to CPU 0 (cmdwire-server with one I/O thread; gRPC sizes its own poller threads). Each is driven by its own closed-loop generator pinned to CPU 1 with the same shape, duration and warm-up: \`cmdwire-bench --command PROTO\`, and \`cmdwire-grpc-bench\` (callback API, which got more out of the gRPC server than one thread on a CompletionQueue) with one channel per connection (a local subchannel pool each, so each its own TCP connection) and depth unary calls in flight per channel, no per-call deadline (as ghz \`--connections C --concurrency C×D\`). Every reply is checked against the expected summary. Alternating per round, $rounds rounds; the ratio is the median of same-round ratios."
    echo
    echo "$grpc_table"
    echo
    echo "$grpc_gen_line"
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
  echo "\`tests/alloc_test.cpp\` counts every \`operator new\` in the process across pipelined requests on 16 connections after warm-up; it runs with \`make test\`. ECHO/PING: < 0.01 per request (measured 0). STRUCT (3-level ComplexData, decoded into the worker's reused request): ≤ 1, the reply's \`names\` string (measured 1). PROTO (decoded on the worker's arena): ≤ 2, the reply's \`names\` (a heap std::string and its buffer; measured 2)."
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
    echo "| cereal binary, same value | cereal | cmdwire | speed-up | target | met |"
    echo "|---|---|---|---|---|---|"
    codec_row "encode, cmdwire's archive vs cereal's PortableBinaryOutputArchive" \
      encode/cereal_portable_binary_reference encode/cereal_bin "$enc_ratio" 4
    codec_row "decode into a new value vs cereal's PortableBinaryInputArchive" \
      decode/cereal_portable_binary_reference decode/cereal_bin "$dec_ratio" 2
    codec_row "decode into a reused value (as the server does) vs the same" \
      decode/cereal_portable_binary_reference decode/cereal_bin_reused "$dec_reused_ratio" 2
    echo
    echo "| benchmark | CPU time | bytes |"
    echo "|---|---|---|"
    echo "$codec"
  fi
} >"$out"
echo
echo "bench: wrote $out in $((SECONDS - started)) s ($built_after s package check and build)"
