#!/usr/bin/env bash
# Profile of the gate on the proxy-overhead row of benches/e2e/run.sh (issue #21): the gate
# (release build, with line tables) in front of the same fast upstream (an nginx answering
# 200 '{}' at once), with the same config (run.sh's gate_config/start_gate: every key at its
# default but the listener, the certificate, the admin listener, the upstream and the
# htpasswd file), under the same wrk load (-t THREADS -c CONNS, benches/e2e/wrk.lua, the
# {SHA} user), recorded with `perf record -g` for DURATION seconds. It prints the share of
# samples per area (benches/e2e/profile.py: TLS, HTTP parsing, auth cache, headers, logging,
# metrics, upstream pool, allocation, kernel, ...), the load's req/s and the gate's CPU per
# request.
#
#   benches/e2e/profile.sh            10 s of load, perf at 999 Hz
#   DURATION=5 benches/e2e/profile.sh
#
# Settings (environment): DURATION (s, 1..120), CONNS, THREADS, FREQ (perf's sampling Hz),
# TOP (how many functions to list), PERF_DATA (where to keep perf.data; default: the work
# dir, removed), KEEP=1 (keep the work dir), NO_PERF=1 (the same load without perf: the
# req/s and CPU per request that perf's own cost would otherwise lower).
#
# It is a script of its own rather than a mode of run.sh: run.sh starts every subject in
# turn and writes a report, where this needs one gate, perf around it and a build with
# line tables in its own target dir (target/profile), so that the release build run.sh
# measures is not rebuilt with other settings each time one or the other runs.
# Needs root (perf on another process; the fast nginx runs as root like run.sh's) and perf
# (Debian: apt-get install -y linux-perf). Only 127.0.0.1 is ever a target; everything
# started here is stopped by the EXIT trap.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

for arg in "$@"; do
  case "$arg" in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown argument $arg (try --help)" >&2; exit 64 ;;
  esac
done

DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
FREQ=${FREQ:-999}
TOP=${TOP:-25}
KEEP=${KEEP:-0}
NO_PERF=${NO_PERF:-0}
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 120 ] || { echo "profile.sh: DURATION must be 1..120" >&2; exit 64; }
[ "$FREQ" -ge 10 ] && [ "$FREQ" -le 10000 ] || { echo "profile.sh: FREQ must be 10..10000" >&2; exit 64; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (perf attaches to the gate; the fast nginx says 'user root;')"
for tool in wrk nginx htpasswd openssl curl python3 jq; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (see benches/e2e/run.sh's list)"
done
if [ "$NO_PERF" != 1 ]; then
  command -v perf >/dev/null 2>&1 || die "perf is missing: apt-get install -y linux-perf"
  perf stat -e task-clock -o /dev/null -- true 2>/dev/null ||
    die "perf cannot count here (kernel.perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)); try NO_PERF=1"
fi

W=$(mktemp -d /tmp/rg-profile.XXXXXX)
LOGS=$(mktemp -d /dev/shm/rg-profile-logs.XXXXXX)
GROUPS_STARTED=()
cleanup() {
  local rc=$? pgid i
  trap - EXIT INT TERM
  for pgid in "${GROUPS_STARTED[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || continue
    for i in $(seq 1 100); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then log "kept $W and $LOGS"; else rm -rf "$W" "$LOGS"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

spawn() { # LOG CMD...: CMD in its own session; sets SPAWNED (its pid and process group)
  local logfile=$1 _
  shift
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  SPAWNED=$!
  GROUPS_STARTED+=("$SPAWNED")
  for _ in $(seq 1 100); do kill -0 -- "-$SPAWNED" 2>/dev/null && return 0; sleep 0.01; done
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_status() { # URL CODE PGID: poll (at most 15 s) while PGID lives
  local i code
  for i in $(seq 1 150); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null) || true
    [ "$code" = "$2" ] && return 0
    kill -0 -- "-$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
cpu_ticks() { # PID: user+system ticks
  local s
  s=$(cat "/proc/$1/stat") || { echo 0; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $((${12} + ${13}))
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE; work dir $W"

# Line tables, so perf can name inlined frames; a target dir of its own (see above).
log "cargo build --release (line tables, target/profile)"
(cd "$ROOT" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR="$ROOT/target/profile" \
  cargo build --release --quiet)
GATE="$ROOT/target/profile/release/registry-gate"

CERTS="$W/certs"
"$GATE" certs generate --san localhost --san 127.0.0.1 --out "$CERTS" >/dev/null
# The same htpasswd as run.sh's (the load runs as usha, the {SHA} row: one SHA-1 check on a
# cache miss, so the row measures the proxying).
HTPASSWD="$W/htpasswd"
declare -A PASSWORD
for user in u5 u10 uapr usha; do PASSWORD[$user]=$(openssl rand -hex 12); done
htpasswd -cbB -C 5 "$HTPASSWD" u5 "${PASSWORD[u5]}" 2>/dev/null
htpasswd -bB -C 10 "$HTPASSWD" u10 "${PASSWORD[u10]}" 2>/dev/null
htpasswd -bm "$HTPASSWD" uapr "${PASSWORD[uapr]}" 2>/dev/null
htpasswd -bs "$HTPASSWD" usha "${PASSWORD[usha]}" 2>/dev/null
chmod 600 "$HTPASSWD"
AUTH="Basic $(printf 'usha:%s' "${PASSWORD[usha]}" | base64 -w0)"

# The fast upstream: run.sh's start_fast, the same nginx.conf.
mkdir -p "$W/fast"
FAST_PORT=$(free_port)
cat >"$W/fast/nginx.conf" <<CONF
user root;
worker_processes 1;
pid "$W/fast/nginx.pid";
error_log "$LOGS/fast-error.log" notice;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path "$W/fast/client_body";
  proxy_temp_path "$W/fast/proxy";
  fastcgi_temp_path "$W/fast/fastcgi";
  uwsgi_temp_path "$W/fast/uwsgi";
  scgi_temp_path "$W/fast/scgi";
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$FAST_PORT;
    location / {
      default_type application/json;
      add_header Docker-Distribution-Api-Version registry/2.0;
      return 200 '{}';
    }
  }
}
CONF
spawn "$LOGS/fast.stderr" nginx -p "$W/fast" -c "$W/fast/nginx.conf" -g 'daemon off;'
FAST_PGID=$SPAWNED
wait_status "http://127.0.0.1:$FAST_PORT/v2/" 200 "$FAST_PGID" || die "the fast nginx did not start: $(tail -n 20 "$LOGS/fast-error.log" "$LOGS/fast.stderr" 2>&1)"

# The gate: run.sh's gate_config and start_gate (access log on, at info, to a file on tmpfs).
PORT=$(free_port)
cat >"$W/proxy.toml" <<TOML
[listen]
addr = "127.0.0.1:$PORT"
[tls]
cert = "$CERTS/server.crt"
key = "$CERTS/server.key"
[admin]
addr = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:$FAST_PORT"
[auth]
htpasswd = "$HTPASSWD"
TOML
spawn "$LOGS/gate.log" "$GATE" serve --config "$W/proxy.toml"
GATE_PID=$SPAWNED
wait_status "https://127.0.0.1:$PORT/v2/" 401 "$GATE_PID" || die "the gate did not start: $(tail -n 20 "$LOGS/gate.log")"

# One request first: the credential is then in the cache, as in run.sh's load after its
# first request, and the upstream connection exists.
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: $AUTH" "https://127.0.0.1:$PORT/v2/") || code=000
[ "$code" = 200 ] || die "an authenticated GET /v2/ through the gate answered $code, not 200"

PERF_DATA=${PERF_DATA:-$W/perf.data}
c0=$(cpu_ticks "$GATE_PID")
if [ "$NO_PERF" != 1 ]; then
  log "perf record -g -F $FREQ on the gate (pid $GATE_PID) for $DURATION s, under wrk -t $THREADS -c $CONNS"
  timeout $((DURATION + 30)) perf record -g -F "$FREQ" -p "$GATE_PID" -o "$PERF_DATA" -- sleep "$((DURATION + 1))" \
    >"$W/perf-record.log" 2>&1 &
  PERF_PID=$!
  sleep 0.5 # perf attached before the load starts
fi
WRK_AUTH=$AUTH WRK_CLOSE=0 WRK_OUT="$W/wrk.json" \
  timeout $((DURATION + 60)) wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --timeout 10s \
  -s "$HERE/wrk.lua" "https://127.0.0.1:$PORT/v2/" >"$W/wrk.stdout" 2>&1 || die "wrk: $(cat "$W/wrk.stdout")"
c1=$(cpu_ticks "$GATE_PID")
if [ "$NO_PERF" != 1 ]; then
  wait "$PERF_PID" || die "perf record: $(tail -n 5 "$W/perf-record.log")"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

TCK=$(getconf CLK_TCK)
jq -r --argjson ticks "$((c1 - c0))" --argjson tck "$TCK" \
  '"load: \(.requests) requests, \(.requests / (.duration_us / 1e6) | floor) req/s, errors \(.connect_errors + .read_errors + .write_errors + .status_errors + .timeouts), p50 \(.p50_us) µs, p99 \(.p99_us) µs; gate CPU \($ticks / $tck * 1e6 / .requests | floor) µs/request"' \
  "$W/wrk.json"
echo "load average: before $LOAD_BEFORE, after $LOAD_AFTER ($(nproc) cores); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- src || echo ' (src modified)')"
[ "$NO_PERF" = 1 ] && exit 0
[ "$PERF_DATA" = "$W/perf.data" ] || log "perf data kept in $PERF_DATA (perf report -i $PERF_DATA)"
# Each sample's call chain (innermost first), classified by area in profile.py.
perf script -i "$PERF_DATA" -F period,ip,sym,dso 2>/dev/null | python3 "$HERE/profile.py" --top "$TOP"
