#!/usr/bin/env bash
# Server memory per idle connection: CONNS connections each send one request, get the reply,
# then stay open and silent; the server's RSS growth divided by CONNS is the cost of one.
# Usage: bench/idle_memory.sh [BIN_DIR] [CONNS]   (prints "cmdwire: N B/conn ...")
set -euo pipefail

bin=${1:-build-release/bin}
conns=${2:-10000}
# Each connection is a descriptor in the server and one in the load generator.
want_fds=$((conns + 4096))
if (($(ulimit -Hn) < want_fds)); then ulimit -Hn "$want_fds" 2>/dev/null || true; fi
ulimit -n "$(( $(ulimit -Hn) < want_fds ? $(ulimit -Hn) : want_fds ))"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a server whose first stdout line ends in HOST:PORT; sets $server_pid, $server_port.
start_server() {
  local out=$tmp/$1.out
  shift
  "$@" >"$out" 2>"$out.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    if grep -q 'listening on' "$out"; then break; fi
    sleep 0.05
  done
  server_port=$(grep -o '[0-9]*$' "$out" | head -n1)
  [[ -n $server_port ]] || { echo "idle_memory: $* did not start" >&2; cat "$out.err" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# measure NAME BENCH-ARGS...: warm the server up, then hold CONNS idle connections.
measure() {
  local name=$1
  shift
  "$bin/cmdwire-bench" --connect "127.0.0.1:$server_port" "$@" --conns 4 --depth 4 \
    --duration 0.3 --warmup 0.1 >/dev/null
  local before after
  before=$(rss_kib "$server_pid")
  "$bin/cmdwire-bench" --connect "127.0.0.1:$server_port" "$@" --idle --conns "$conns" \
    --duration 1 >"$tmp/$name.idle" &
  local load=$!
  for _ in $(seq 600); do
    if grep -q '^idle:' "$tmp/$name.idle"; then break; fi
    sleep 0.05
  done
  sleep 0.5  # let the server settle after the last reply
  after=$(rss_kib "$server_pid")
  wait "$load" || { echo "idle_memory: $name: $(cat "$tmp/$name.idle")" >&2; exit 1; }
  echo "$name: $(( (after - before) * 1024 / conns )) B/conn (RSS $before -> $after KiB," \
    "$conns idle connections; $(grep '^idle:' "$tmp/$name.idle"))"
}

start_server cmdwire "$bin/cmdwire-server" --listen 127.0.0.1:0 --threads 1 --log-level warn
measure cmdwire --command PING
kill "$server_pid"

start_server yardstick "$bin/cmdwire-baseline-echo" --listen 127.0.0.1:0 --threads 1
measure yardstick --raw-echo --payload-size 16
