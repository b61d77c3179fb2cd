#!/usr/bin/env bash
# Scale-out on loopback: Redis as the pub/sub backplane, three cmdwire-servers, HAProxy in front
# with deploy/haproxy.cfg. Each process is started here and stopped by its PID.
# Usage: tests/scaleout/scaleout_test.sh BIN_DIR TOOL   (ctest passes both)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$1 tool=$2

if ! command -v haproxy >/dev/null || ! command -v redis-server >/dev/null; then
  "$root/scripts/install-deps"
fi
export PATH="$PATH:/usr/sbin"

work=$(mktemp -d)
declare -A pid
stop_all() {
  for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
on_exit() {
  local rc=$?
  stop_all
  if ((rc != 0)); then
    for f in "$work"/*.log; do echo "--- $f"; tail -n 30 "$f"; done
  fi
  rm -rf "$work"
}
trap on_exit EXIT
step() { echo "scaleout: $*"; }
die() { echo "scaleout: FAILED: $*" >&2; exit 1; }

# Waits for a server's "listening on HOST:PORT" line (the log is written before it serves).
port_of() {
  local log=$1 line
  for _ in $(seq 500); do
    line=$(grep -m1 -o 'listening on 127.0.0.1:[0-9]*' "$log" || true)
    if [[ -n $line ]]; then echo "${line##*:}"; return 0; fi
    kill -0 "${pid[$2]}" 2>/dev/null || die "$2 exited: $(cat "$log")"
    sleep 0.02  # polling a file for a line, bounded: not a guess at timing
  done
  die "$2 did not start"
}

start_redis() {
  # With a password, so the servers' AUTH (--pubsub-redis-password-file) is exercised too.
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --requirepass "$(cat "$work/redis.pass")" \
    --logfile "$work/redis.log" 3>&- 4<&- &  # not holding the load's control pipe open
  pid[redis]=$!
  for _ in $(seq 500); do
    if REDISCLI_AUTH=$(cat "$work/redis.pass") redis-cli -p "$redis_port" ping 2>/dev/null |
      grep -q PONG; then return 0; fi
    sleep 0.02
  done
  die "redis-server did not start"
}

start_server() {  # NAME
  "$bin/cmdwire-server" --listen 127.0.0.1:0 --threads 1 --pubsub-redis "127.0.0.1:$redis_port" \
    --pubsub-redis-password-file "$work/redis.pass" \
    --proxy-protocol --drain-grace 1.5 --drain-timeout 5 --log-level info \
    >"$work/$1.log" 2>&1 3>&- 4<&- &
  pid[$1]=$!
}

echo "scaleout-$RANDOM$RANDOM" >"$work/redis.pass"
redis_port=$("$tool" free-port)
start_redis
for s in s1 s2 s3; do start_server $s; done
declare -A port
for s in s1 s2 s3; do port[$s]=$(port_of "$work/$s.log" $s); done
step "redis on $redis_port; servers on ${port[s1]} ${port[s2]} ${port[s3]}"

front=$("$tool" free-port)
CMDWIRE_FRONTEND="127.0.0.1:$front" CMDWIRE_S1="127.0.0.1:${port[s1]}" \
  CMDWIRE_S2="127.0.0.1:${port[s2]}" CMDWIRE_S3="127.0.0.1:${port[s3]}" \
  haproxy -db -f "$root/deploy/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pid[haproxy]=$!
for s in s1 s2 s3; do "$tool" wait-stat "127.0.0.1:${port[$s]}" backplane.state ready; done
# HAProxy's health checks (HEALTH through a PROXY LOCAL header) reach every server.
for s in s1 s2 s3; do "$tool" wait-stat-ge "127.0.0.1:${port[$s]}" commands.HEALTH.calls 2; done

# ---- a PROXY header from the test: the server logs the address it carried.
"$tool" proxy-ping "127.0.0.1:${port[s1]}" 203.0.113.7:4242
grep -q '203.0.113.7:4242 (via 127.0.0.1:[0-9]*): PROXY header' "$work/s1.log" ||
  die "s1 did not log the address the PROXY header carried"
# Without one, a connection is refused with a log line.
printf 'PING\n' | nc -q1 127.0.0.1 "${port[s1]}" >"$work/direct.out" || true
grep -q '^ERR bad-request' "$work/direct.out" || die "a direct PING was not refused"
grep -q 'refused: no PROXY protocol v2 header' "$work/s1.log" || die "no log line for the refusal"
step "PROXY header: s1 logged 203.0.113.7:4242; a connection without one was refused"

# ---- pub/sub: a subscriber on s1 gets, in order, what is published through s3 and HAProxy.
mkfifo "$work/sub.fifo"
"$tool" subscribe "127.0.0.1:${port[s1]}" news 60 >"$work/sub.fifo" 2>"$work/sub.log" &
pid[sub]=$!
exec 4<"$work/sub.fifo"
read -r -t 20 ready <&4 || die "subscriber did not start"
[[ $ready == ready ]] || die "subscriber said: $ready"
"$tool" publish-direct "127.0.0.1:${port[s3]}" news via-s3 1 20
"$tool" publish "127.0.0.1:$front" news via-haproxy 1 20

# ---- load: 8 callers, a channel of 4 connections through HAProxy; SIGTERM s2 mid-run.
mkfifo "$work/load.ctl"
"$tool" load "127.0.0.1:$front" 8 4 <"$work/load.ctl" >"$work/load.out" 2>"$work/load.log" &
pid[load]=$!
exec 3>"$work/load.ctl"
for s in s1 s2 s3; do "$tool" wait-stat-ge "127.0.0.1:${port[$s]}" commands.ECHO.calls 500; done
declare -A before
for s in s1 s3; do before[$s]=$("$tool" stat "127.0.0.1:${port[$s]}" commands.ECHO.calls); done
s2_calls=$("$tool" stat "127.0.0.1:${port[s2]}" commands.ECHO.calls)
step "load reaches all three (s2 served $s2_calls); SIGTERM s2"
kill -TERM "${pid[s2]}"
wait "${pid[s2]}" || die "s2 did not exit cleanly after SIGTERM"
unset 'pid[s2]'
grep -q 'DRAINING' "$work/s2.log" || die "s2 did not log its drain"
# The others take s2's share: each serves at least as many more calls as s2 had served.
for s in s1 s3; do
  "$tool" wait-stat-ge "127.0.0.1:${port[$s]}" commands.ECHO.calls $((before[$s] + s2_calls))
done
step "s1 and s3 took s2's share"

# ---- Redis restarts mid-run: once it is back, publishes arrive and every server serves.
kill -TERM "${pid[redis]}"
wait "${pid[redis]}" || true
unset 'pid[redis]'
"$tool" wait-stat "127.0.0.1:${port[s1]}" backplane.state down
# A subscriber that comes while Redis is down is told so in the log, not promised every server.
"$tool" subscribe "127.0.0.1:${port[s1]}" news 0 >/dev/null
grep -q 'pub/sub backplane down: until it is back' "$work/s1.log" ||
  die "s1 acknowledged a subscription as if Redis were there"
start_redis
for s in s1 s3; do "$tool" wait-stat "127.0.0.1:${port[$s]}" backplane.state ready; done
"$tool" publish-direct "127.0.0.1:${port[s3]}" news after-restart 1 20
step "redis restarted; published 20 more through s3"

exec 3>&-  # ends the load
wait "${pid[load]}" || die "load: $(cat "$work/load.out" "$work/load.log")"
unset 'pid[load]'
step "load: $(cat "$work/load.out")"
for s in s1 s3; do "$tool" stat "127.0.0.1:${port[$s]}" draining | grep -q false; done

expected=$(for p in via-s3 via-haproxy after-restart; do for i in $(seq 20); do echo "$p-$i"; done; done)
got=$(cat <&4)
wait "${pid[sub]}" || die "subscriber: $(cat "$work/sub.log")"
unset 'pid[sub]'
[[ $got == "$expected" ]] || die "subscriber got, in this order:
$got"
step "subscriber on s1 got all 60 messages in order"
echo "scaleout: PASS"
