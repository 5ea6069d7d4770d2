#!/usr/bin/env bash
# End-to-end benchmark (issue #5): registry-gate against the nginx recipe and Caddy, and
# (issue #21) against a tuned nginx (benches/e2e/nginx-tuned.conf) and HAProxy
# (benches/e2e/haproxy.cfg), all in front of one real docker-registry on loopback, and the
# registry directly as the bound; and (issue #9) the gate with [ldap] against Apache httpd
# with mod_authnz_ldap, both asking one real slapd.
#
#   benches/e2e/run.sh            full run: REPS=3, 10 s loads, 1 GiB blobs, 5000 idle
#                                 connections; writes docs/benchmark.md
#   benches/e2e/run.sh --smoke    1 repetition, 1 s loads, 16 MiB blobs, 100 idle
#                                 connections; writes a temp file (path printed)
#   PARTS=ldap benches/e2e/run.sh
#                                 full run of some parts only: their figures replace those
#                                 parts' in docs/benchmark.md, the rest are kept, and the
#                                 report says which figures come from which run
#
# Settings (environment): REPS, DURATION (s), CONNS, THREADS, BLOB_MIB, IDLE, IDLE_SMALL
# (a second idle-connection count that the recipe's nginx can hold; 0: skip), HOLD (s),
# TARGETS (order within a repetition; default "gate nginx nginx-tuned haproxy caddy
# direct"), OUT (report path), MERGE_INTO (a report to merge this run's parts into), KEEP=1
# (keep the temp dirs), PARTS (which measurements: "idle get overhead handshake resume blobs
# ldap"), and the users each load runs as (GET_USERS, OVERHEAD_USERS, HANDSHAKE_USERS,
# HANDSHAKE_REGISTRY_USERS, RESUME_USERS, RESUME_REGISTRY_USERS; see below). Every target is
# started afresh in each repetition, in turn: A B C D, A B C D, ... Every part of the main
# loop (idle get overhead handshake resume blobs) runs for every proxy; only the users
# differ: Caddy reads bcrypt only, HAProxy bcrypt and (as a plain `insecure-password`) the
# {SHA} user, not apr1.
# The ldap part (benches/e2e/ldap.sh) runs after the others, with its own two targets, the
# gate and Apache (benches/e2e/apache-recipe.conf), in turn: A B, A B, ...
#
# Loads (all HTTP/1.1, since the recipe offers no h2): wrk with -t THREADS -c CONNS
# -d DURATION --timeout 10s and benches/e2e/wrk.lua for the Authorization header; full
# TLS handshakes with CONNS parallel `openssl s_time -new` (one authenticated request per
# connection, no session reuse); reconnects with wrk plus "Connection: close" (wrk then
# resumes the TLS session); blobs with curl (POST, one chunked PATCH from the file, PUT
# ?digest=); idle connections with benches/e2e/idle.py. The ldap part: the GET /v2/ load as a
# directory user, whose password each proxy checks against the same slapd.
# Only 127.0.0.1 is ever a target. Everything started here runs in its own process group
# and is stopped by the EXIT trap, also on failure or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# The command as run, with the settings given in the environment (see below).
COMMAND_LINE="benches/e2e/run.sh${*:+ $*}"
for setting in MERGE_INTO OUT KEEP TARGETS THREADS CONNS PARTS RESUME_REGISTRY_USERS RESUME_USERS \
  HANDSHAKE_REGISTRY_USERS HANDSHAKE_USERS OVERHEAD_USERS GET_USERS IDLE_DEADLINE SETTLE_MAX \
  SPEED_SECONDS LOOPBACK_MIB HOLD IDLE_SMALL IDLE BLOB_MIB DURATION REPS; do
  [ -z "${!setting+set}" ] || COMMAND_LINE="$setting='${!setting}' $COMMAND_LINE"
done

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 64 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  REPS=${REPS:-1} DURATION=${DURATION:-1} BLOB_MIB=${BLOB_MIB:-16} IDLE=${IDLE:-100} IDLE_SMALL=${IDLE_SMALL:-0}
  HOLD=${HOLD:-1} LOOPBACK_MIB=${LOOPBACK_MIB:-256} SPEED_SECONDS=${SPEED_SECONDS:-1}
  SETTLE_MAX=${SETTLE_MAX:-2} IDLE_DEADLINE=${IDLE_DEADLINE:-15}
else
  REPS=${REPS:-3} DURATION=${DURATION:-10} BLOB_MIB=${BLOB_MIB:-1024} IDLE=${IDLE:-5000} IDLE_SMALL=${IDLE_SMALL:-1000}
  HOLD=${HOLD:-5} LOOPBACK_MIB=${LOOPBACK_MIB:-1024} SPEED_SECONDS=${SPEED_SECONDS:-3}
  SETTLE_MAX=${SETTLE_MAX:-10} IDLE_DEADLINE=${IDLE_DEADLINE:-90}
fi
# Users per load. u5/u10: bcrypt cost 5/10; uapr: apr1; usha: {SHA}. Caddy reads bcrypt only.
# handshake: full TLS handshakes (openssl s_time -new); resume: wrk with "Connection: close",
# which reconnects with TLS session resumption.
if [ "$SMOKE" = 1 ]; then
  GET_USERS=${GET_USERS-u5 uapr} OVERHEAD_USERS=${OVERHEAD_USERS-usha}
  HANDSHAKE_USERS=${HANDSHAKE_USERS-u5} HANDSHAKE_REGISTRY_USERS=${HANDSHAKE_REGISTRY_USERS-}
  RESUME_USERS=${RESUME_USERS-u5} RESUME_REGISTRY_USERS=${RESUME_REGISTRY_USERS-}
else
  GET_USERS=${GET_USERS-u10 u5 uapr} OVERHEAD_USERS=${OVERHEAD_USERS-u5 usha}
  HANDSHAKE_USERS=${HANDSHAKE_USERS-u5 usha} HANDSHAKE_REGISTRY_USERS=${HANDSHAKE_REGISTRY_USERS-u5}
  RESUME_USERS=${RESUME_USERS-u5 usha} RESUME_REGISTRY_USERS=${RESUME_REGISTRY_USERS-}
fi
# Which measurements run (all by default).
ALL_PARTS="idle get overhead handshake resume blobs ldap token"
PARTS=${PARTS:-$ALL_PARTS}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
TARGETS=${TARGETS:-gate nginx nginx-tuned haproxy caddy direct}
KEEP=${KEEP:-0}
# Bounds, so that no loop can run away.
[ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] || { echo "run.sh: REPS must be 1..20" >&2; exit 64; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 120 ] || { echo "run.sh: DURATION must be 1..120" >&2; exit 64; }
[ "$IDLE" -ge 1 ] && [ "$IDLE" -le 15000 ] || { echo "run.sh: IDLE must be 1..15000" >&2; exit 64; }
[ "$IDLE_SMALL" -ge 0 ] && [ "$IDLE_SMALL" -le 15000 ] || { echo "run.sh: IDLE_SMALL must be 0..15000" >&2; exit 64; }
[ "$BLOB_MIB" -ge 1 ] && [ "$BLOB_MIB" -le 4096 ] || { echo "run.sh: BLOB_MIB must be 1..4096" >&2; exit 64; }
CURL_MAX=$((BLOB_MIB / 2 + 60)) # seconds for one blob request (2 MiB/s at worst)
for part in $PARTS; do
  case " $ALL_PARTS " in *" $part "*) ;; *) echo "run.sh: unknown part $part (parts: $ALL_PARTS)" >&2; exit 64 ;; esac
done

want() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# The parts that run in the main loop over TARGETS (all but ldap).
main_parts() { local part; for part in idle get overhead handshake resume blobs; do want "$part" && return 0; done; return 1; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------
need=()
for tool in wrk:wrk h2load:nghttp2-client curl:curl nginx:nginx caddy:caddy \
  docker-registry:docker-registry htpasswd:apache2-utils openssl:openssl jq:jq \
  pgrep:procps /usr/bin/time:time python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "please install: sudo apt-get install -y ${need[*]}"
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# slapd, apache2 and haproxy come from scripts/install-deps, which keeps Debian from
# configuring a directory and starting system daemons while it installs them.
case " $TARGETS " in
  *" haproxy "*) [ -x /usr/sbin/haproxy ] || die "/usr/sbin/haproxy is missing (TARGETS has haproxy): run scripts/install-deps" ;;
esac
if want ldap; then
  for tool in /usr/sbin/slapd /usr/sbin/slapadd /usr/sbin/slappasswd /usr/sbin/apache2 ldapsearch; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (PARTS has ldap): run scripts/install-deps"
  done
fi
# The recipe runs nginx's workers as root (its temp dirs are root-only), as the tests do.
[ "$(id -u)" = 0 ] || die "run as root: the recipe's nginx says 'user root;'"

# 5000 idle connections need as many descriptors, in the client and in each server.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((IDLE + 256)) ]; then
  die "ulimit -Hn is $hard; IDLE=$IDLE needs $((IDLE + 256))"
fi
ulimit -n "$hard"

# --- temp dirs, process groups, cleanup ---------------------------------------------------
# W: data on disk (registry storage, nginx temp dirs, the blob), so that /proc/PID/io counts
# what a proxy buffers to disk. LOGS: every log on tmpfs, so that log lines do not count.
W=$(mktemp -d /tmp/rg-e2e.XXXXXX)
LOGS=$(mktemp -d /dev/shm/rg-e2e-logs.XXXXXX)
GROUPS_STARTED=()

stop_group() { # PGID: TERM the group, wait up to 10 s, then KILL
  local pgid=$1 i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pgid
  trap - EXIT INT TERM
  for pgid in "${GROUPS_STARTED[@]}"; do stop_group "$pgid"; done
  if [ "$KEEP" = 1 ]; then
    log "kept $W and $LOGS"
  else
    rm -rf "$W" "$LOGS"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn LOG CMD...: runs CMD in a new session (its pid is its process group id) with its
# output in LOG; sets SPAWNED. Returns once the group exists (at most 1 s): until setsid has
# run in the child, `kill -0 -- -PGID` fails, and the callers take that for an exit.
spawn() {
  local logfile=$1 _
  shift
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  SPAWNED=$!
  GROUPS_STARTED+=("$SPAWNED")
  for _ in $(seq 1 100); do
    kill -0 -- "-$SPAWNED" 2>/dev/null && return 0
    sleep 0.01
  done
}

forget_group() { # PGID: stop it and drop it from the cleanup list
  local pgid=$1 kept=() g
  stop_group "$pgid"
  for g in "${GROUPS_STARTED[@]}"; do [ "$g" = "$pgid" ] || kept+=("$g"); done
  GROUPS_STARTED=("${kept[@]}")
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

group_pids() { pgrep -g "$1" 2>/dev/null || true; }

cpu_ticks() { # PGID: user+system ticks of the whole group
  local p s total=0
  for p in $(group_pids "$1"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

io_written() { # PGID: write_bytes of the whole group
  local p total=0 n
  for p in $(group_pids "$1"); do
    n=$(awk '/^write_bytes:/ {print $2}' "/proc/$p/io" 2>/dev/null) || continue
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

reset_peak_rss() { local p; for p in $(group_pids "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }

peak_rss_kib() { # PGID: sum of VmHWM (since the last reset) over the group
  local p total=0 n
  for p in $(group_pids "$1"); do
    n=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }

# wait_status URL CODE PGID: polls until URL answers CODE (at most 15 s), while PGID lives.
wait_status() {
  local url=$1 want=$2 pgid=$3 i code
  for i in $(seq 1 150); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || true
    [ "$code" = "$want" ] && return 0
    kill -0 -- "-$pgid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# settle PGID...: waits (at most SETTLE_MAX s) until the groups together use < 7 % of a core
# over 0.3 s, so that work queued by one load (nginx finishing bcrypt checks) does not run
# into the next.
settle() {
  local i before after pgid
  for i in $(seq 1 $((SETTLE_MAX * 10 / 3 + 1))); do
    before=0 after=0
    for pgid in "$@"; do before=$((before + $(cpu_ticks "$pgid"))); done
    sleep 0.3
    for pgid in "$@"; do after=$((after + $(cpu_ticks "$pgid"))); done
    [ $((after - before)) -ge 2 ] || return 0
  done
}

# --- build, certificates, users, blob ------------------------------------------------------
STARTED_AT=$(date -u +%FT%TZ)
START_S=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE; work dir $W, logs $LOGS"

log "cargo build --release"
(cd "$ROOT" && cargo build --release --quiet)
GATE="$ROOT/target/release/registry-gate"
GATE_COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
GATE_DIRTY=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)

CERTS="$W/certs"
"$GATE" certs generate --san localhost --san 127.0.0.1 --out "$CERTS" >/dev/null
CA="$CERTS/ca.crt"

HTPASSWD="$W/htpasswd"
declare -A PASSWORD AUTH
for user in u5 u10 uapr usha; do
  PASSWORD[$user]=$(openssl rand -hex 12)
  AUTH[$user]="Basic $(printf '%s:%s' "$user" "${PASSWORD[$user]}" | base64 -w0)"
done
# cost-5 and cost-10 bcrypt, apr1 (nginx's cheap classic), and {SHA} (one SHA-1: nginx's
# cheapest, to measure proxying without password-hash cost).
htpasswd -cbB -C 5 "$HTPASSWD" u5 "${PASSWORD[u5]}" 2>/dev/null
htpasswd -bB -C 10 "$HTPASSWD" u10 "${PASSWORD[u10]}" 2>/dev/null
htpasswd -bm "$HTPASSWD" uapr "${PASSWORD[uapr]}" 2>/dev/null
htpasswd -bs "$HTPASSWD" usha "${PASSWORD[usha]}" 2>/dev/null
chmod 600 "$HTPASSWD"

BLOB="$W/blob"
BLOB_BYTES=$((BLOB_MIB * 1024 * 1024))
if want blobs; then
  log "writing a $BLOB_MIB MiB random blob"
  head -c "$BLOB_BYTES" /dev/urandom >"$BLOB"
  DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"
fi

RESULTS="$W/results.jsonl"
: >"$RESULTS"
record() { jq -c -n "$@" >>"$RESULTS"; }

# --- physical bounds (with the main loop's parts: they bound its transfers) ----------------
if main_parts; then
  log "openssl speed, loopback copy"
  for cipher in aes-128-gcm aes-256-gcm chacha20-poly1305; do
    kbps=$(openssl speed -evp "$cipher" -bytes 16384 -seconds "$SPEED_SECONDS" 2>/dev/null | tail -1 | awk '{print $NF}')
    record --arg c "$cipher" --arg k "${kbps%k}" '{test:"bound", what:("openssl speed -evp " + $c + " -bytes 16384"), mb_s: (($k|tonumber)/1000)}'
  done
  lb=$(timeout 120 python3 "$HERE/loopback.py" --bytes $((LOOPBACK_MIB * 1024 * 1024)) --tries 3)
  record --argjson r "$lb" '{test:"bound", what:"loopback TCP copy (1 connection, best of 3)", mib_s: $r.mib_s, bytes: $r.bytes}'
fi

# --- the registry and the fast upstream ----------------------------------------------------
start_registry() {
  local dir="$W/registry"
  mkdir -p "$dir/storage"
  REGISTRY_PORT=$(free_port)
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: registry-gate-e2e
YAML
  spawn "$LOGS/registry.log" env -u REGISTRY_HTTP_ADDR docker-registry serve "$dir/config.yml"
  REGISTRY_PGID=$SPAWNED
  wait_status "http://127.0.0.1:$REGISTRY_PORT/v2/" 200 "$REGISTRY_PGID"
}

start_fast() { # nginx answering 200 '{}' at once: the upstream that is never the bottleneck
  local dir="$W/fast"
  mkdir -p "$dir"
  FAST_PORT=$(free_port)
  cat >"$dir/nginx.conf" <<CONF
user root;
worker_processes 1;
pid "$dir/nginx.pid";
error_log "$LOGS/fast-error.log" notice;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path "$dir/client_body";
  proxy_temp_path "$dir/proxy";
  fastcgi_temp_path "$dir/fastcgi";
  uwsgi_temp_path "$dir/uwsgi";
  scgi_temp_path "$dir/scgi";
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
  spawn "$LOGS/fast.stderr" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
  FAST_PGID=$SPAWNED
  wait_status "http://127.0.0.1:$FAST_PORT/v2/" 200 "$FAST_PGID"
}

# --- the three proxies; each sets PORT and PGID -----------------------------------------------
# gate_config DIR TOML: DIR/proxy.toml for a gate on a new free port (sets PORT): the
# listener, the certificate and an admin listener on a free port (two gates run at once
# here), then TOML; every other key at its default (login cache and throttle on, access log
# on).
gate_config() {
  mkdir -p "$1"
  PORT=$(free_port)
  cat >"$1/proxy.toml" <<TOML
[listen]
addr = "127.0.0.1:$PORT"
[tls]
cert = "$CERTS/server.crt"
key = "$CERTS/server.key"
[admin]
addr = "127.0.0.1:0"
$2
TOML
}

start_gate() { # NAME UPSTREAM(host:port)
  gate_config "$W/$1" "[upstream]
url = \"http://$2\"
[auth]
htpasswd = \"$HTPASSWD\""
  spawn "$LOGS/$1.log" "$GATE" serve --config "$W/$1/proxy.toml"
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

# shellcheck source=benches/e2e/ldap.sh
. "$HERE/ldap.sh"
# shellcheck source=benches/e2e/token.sh
. "$HERE/token.sh"

# The recipe: benches/e2e/nginx-recipe.conf (the tests' config, logs moved to tmpfs); and the
# recipe tuned (benches/e2e/nginx-tuned.conf), with the same placeholders.
NGINX_RECIPE=$(cat "$HERE/nginx-recipe.conf")
NGINX_TUNED=$(cat "$HERE/nginx-tuned.conf")

nginx_from() { # CONF NAME UPSTREAM: nginx with the config CONF, its placeholders filled in
  local conf=$1 dir="$W/$2"
  mkdir -p "$dir" "$LOGS/$2"
  PORT=$(free_port)
  conf=${conf//\{dir\}/$dir}
  conf=${conf//\{logs\}/$LOGS/$2}
  conf=${conf//\{listen\}/127.0.0.1:$PORT}
  conf=${conf//\{upstream\}/$3}
  conf=${conf//\{cert\}/$CERTS/server.crt}
  conf=${conf//\{key\}/$CERTS/server.key}
  conf=${conf//\{htpasswd\}/$HTPASSWD}
  printf '%s' "$conf" >"$dir/nginx.conf"
  spawn "$LOGS/$2/stderr.log" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

start_nginx() { nginx_from "$NGINX_RECIPE" "$@"; }        # NAME UPSTREAM
start_nginx_tuned() { nginx_from "$NGINX_TUNED" "$@"; }   # NAME UPSTREAM

# HAProxy: benches/e2e/haproxy.cfg with the same certificate and key in one PEM (HAProxy's
# form), and the users every load uses: the bcrypt rows with their hashes (crypt(3) reads
# them), the {SHA} row's user with its plain password (crypt(3) has no {SHA}); apr1 cannot be
# given to it (see supported). Its log lines go to stdout, a file on tmpfs.
HAPROXY_CFG=$(cat "$HERE/haproxy.cfg")

start_haproxy() { # NAME UPSTREAM
  local dir="$W/$1" conf users
  mkdir -p "$dir"
  PORT=$(free_port)
  (umask 077 && cat "$CERTS/server.crt" "$CERTS/server.key" >"$dir/server.pem")
  users=$(awk -F: '$1 == "u5" || $1 == "u10" {printf "    user %s password %s\n", $1, $2}' "$HTPASSWD")
  users+=$'\n'"    user usha insecure-password ${PASSWORD[usha]}"
  conf=${HAPROXY_CFG//\{listen\}/127.0.0.1:$PORT}
  conf=${conf//\{pem\}/$dir/server.pem}
  conf=${conf//\{upstream\}/$2}
  conf=${conf//\{users\}/$users}
  printf '%s\n' "$conf" >"$dir/haproxy.cfg"
  chmod 600 "$dir/haproxy.cfg"
  spawn "$LOGS/$1.log" haproxy -db -f "$dir/haproxy.cfg"
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

# Caddy 2.6 with the recipe's pieces: the same certificate, the same bcrypt users (Caddy
# reads no apr1 or {SHA}), the user-agent block (RE2 has no look-ahead, so "not" does it),
# the API-version header only where the registry sent none, and reverse_proxy.
start_caddy() { # NAME UPSTREAM
  local dir="$LOGS/$1-home" users
  mkdir -p "$dir"
  PORT=$(free_port)
  users=$(awk -F: '$1 == "u5" || $1 == "u10" {printf "\t\t\t%s %s\n", $1, $2}' "$HTPASSWD")
  cat >"$W/$1.Caddyfile" <<CADDY
{
	admin off
	auto_https off
	storage file_system $dir/data
	servers {
		protocols h1 h2
	}
	log {
		output file $LOGS/$1.log
		level WARN
	}
}
https://127.0.0.1:$PORT {
	bind 127.0.0.1
	tls $CERTS/server.crt $CERTS/server.key
	route /v2/* {
		header ?Docker-Distribution-Api-Version registry/2.0
		@old {
			header_regexp User-Agent \`^(docker/1\.(3|4|5)|Go ).*$\`
			not header_regexp User-Agent \`^docker/1\.5\.[0-9]-dev\`
		}
		respond @old 404
		basicauth bcrypt "Registry realm" {
$users
		}
		reverse_proxy $2
	}
}
CADDY
  spawn "$LOGS/$1.stderr" env HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
    caddy run --config "$W/$1.Caddyfile" --adapter caddyfile
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

supported() { # TARGET USER...: the users TARGET can check (Caddy: bcrypt only; HAProxy: no apr1)
  local target=$1 user
  shift
  for user in "$@"; do
    case "$target:$user" in caddy:uapr | caddy:usha | haproxy:uapr) ;; *) echo "$user" ;; esac
  done
}

# start KIND NAME UPSTREAM: up to 3 attempts (another process may take the free port first).
start() {
  local attempt
  for attempt in 1 2 3; do
    if "start_${1//-/_}" "$2" "$3"; then return 0; fi
    log "$1 ($2) did not start (attempt $attempt); its log:"
    tail -n 20 "$LOGS/$2.log" "$LOGS/$2.stderr" "$LOGS/$2/error.log" "$LOGS/$2/stderr.log" >&2 2>/dev/null || true
    forget_group "$PGID"
  done
  die "$1 ($2) did not start (its log is above; KEEP=1 keeps its config, in the work dir)"
}

# --- measurements --------------------------------------------------------------------------
# load REP TARGET TEST USER URL SERVER_PGID BACKEND_PGID [close]: one wrk run, one record.
load() {
  local rep=$1 target=$2 test=$3 user=$4 url=$5 server=$6 backend=$7 close=${8:-0}
  local out="$W/wrk.json" timing="$W/wrk.time" s0 s1 b0 b1 auth=""
  [ "$user" = none ] || auth=${AUTH[$user]}
  rm -f "$out"
  s0=$(cpu_ticks "$server")
  b0=$(cpu_ticks "$backend")
  WRK_AUTH=$auth WRK_CLOSE=$close WRK_OUT=$out \
    /usr/bin/time -f '%e %U %S' -o "$timing" \
    timeout $((DURATION + 60)) wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --timeout 10s \
    -s "$HERE/wrk.lua" "$url" >"$W/wrk.stdout" 2>&1 || die "wrk $target $test $user: $(cat "$W/wrk.stdout")"
  s1=$(cpu_ticks "$server")
  b1=$(cpu_ticks "$backend")
  read -r wall usr sys < <(tail -n 1 "$timing")
  record --argjson rep "$rep" --arg target "$target" --arg test "$test" --arg user "$user" \
    --argjson w "$(cat "$out")" --argjson wall "$wall" --argjson cpu "$(calc "$usr + $sys")" \
    --argjson sv "$(((s1 - s0)))" --argjson bk "$(((b1 - b0)))" --argjson tck "$TCK" \
    '{rep:$rep, target:$target, test:$test, user:$user,
      rps: ($w.requests / ($w.duration_us / 1e6)), p50_ms: ($w.p50_us / 1000), p99_ms: ($w.p99_us / 1000),
      requests: $w.requests,
      errors: ($w.connect_errors + $w.read_errors + $w.write_errors + $w.status_errors + $w.timeouts),
      wrk: $w, gen_cpu_pct: (100 * $cpu / $wall),
      server_cpu_pct: (100 * $sv / $tck / ($w.duration_us / 1e6)),
      backend_cpu_pct: (100 * $bk / $tck / ($w.duration_us / 1e6))}'
  log "  $target $test $user: $(jq -r '"\(.rps|floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, errors \(.errors), wrk CPU \(.gen_cpu_pct|floor) %, server CPU \(.server_cpu_pct|floor) %"' <<<"$(tail -1 "$RESULTS")")"
  settle "$server" "$backend"
}

location_of() { # HEADERS_FILE BASE: the Location header, made absolute against BASE
  local loc
  loc=$(awk 'tolower($1) == "location:" {print $2}' "$1" | tr -d '\r' | tail -1)
  case "$loc" in
    http://* | https://*) echo "$loc" ;;
    /*) echo "$2$loc" ;;
    *) echo "" ;;
  esac
}

# blob REP TARGET up|down BASE SERVER_PGID [curl auth args...]
blob() {
  local rep=$1 target=$2 dir=$3 base=$4 server=$5
  shift 5
  # HTTP/1.1 everywhere: the recipe offers no h2, and curl would pick h2 with the gate
  # and Caddy (ALPN), which changes what is compared.
  local curl_args=(-sS --http1.1 --max-time "$CURL_MAX" --cacert "$CA" "$@")
  local name="bench/$target-$rep" t0 t1 io0 io1 c0 c1 rss0 ok=true code loc sizes timing="$W/curl.time"
  if [ "$server" != none ]; then
    reset_peak_rss "$server"
    rss0=$(peak_rss_kib "$server")
    io0=$(io_written "$server")
    c0=$(cpu_ticks "$server")
  fi
  t0=$(now)
  if [ "$dir" = up ]; then
    code=$(curl "${curl_args[@]}" -D "$W/h1" -o /dev/null -w '%{http_code}' -X POST "$base/v2/$name/blobs/uploads/") || code=000
    [ "$code" = 202 ] || ok=false
    loc=$(location_of "$W/h1" "$base")
    code=$(/usr/bin/time -f '%e %U %S' -o "$timing" curl "${curl_args[@]}" -D "$W/h2" -o /dev/null -w '%{http_code}' \
      -X PATCH -T "$BLOB" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
      -H 'Expect:' "$loc") || code=000
    [ "$code" = 202 ] || ok=false
    loc=$(location_of "$W/h2" "$base")
    case "$loc" in *\?*) loc="$loc&digest=$DIGEST" ;; *) loc="$loc?digest=$DIGEST" ;; esac
    code=$(curl "${curl_args[@]}" -o /dev/null -w '%{http_code}' -X PUT "$loc") || code=000
    [ "$code" = 201 ] || ok=false
    t1=$(now)
    # The registry has the blob, whole: its size as stored.
    sizes=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %header{content-length}' -I \
      "http://127.0.0.1:$REGISTRY_PORT/v2/$name/blobs/$DIGEST") || sizes=000
    [ "$sizes" = "200 $BLOB_BYTES" ] || ok=false
  else
    sizes=$(/usr/bin/time -f '%e %U %S' -o "$timing" curl "${curl_args[@]}" -o /dev/null \
      -w '%{http_code} %{size_download}' "$base/v2/bench/seed/blobs/$DIGEST") || sizes=000
    t1=$(now)
    [ "$sizes" = "200 $BLOB_BYTES" ] || ok=false
  fi
  local disk=null rss=null cpu=null rss_before=null
  if [ "$server" != none ]; then
    io1=$(io_written "$server")
    c1=$(cpu_ticks "$server")
    disk=$((io1 - io0))
    rss=$(peak_rss_kib "$server")
    rss_before=$rss0
    cpu=$(calc "($c1 - $c0) / $TCK")
  fi
  read -r wall usr sys < <(tail -n 1 "$timing")
  record --argjson rep "$rep" --arg target "$target" --arg test "$dir" \
    --argjson s "$(calc "$t1 - $t0")" --argjson bytes "$BLOB_BYTES" --argjson ok "$ok" \
    --argjson disk "$disk" --argjson rss "$rss" --argjson rss0 "$rss_before" --argjson cpu "$cpu" \
    --argjson gcpu "$(calc "$usr + $sys")" --argjson gwall "$wall" \
    '{rep:$rep, target:$target, test:$test, seconds:$s, mib_s: ($bytes / 1048576 / $s), ok:$ok,
      disk_bytes:$disk, rss_before_kib:$rss0, peak_rss_kib:$rss, server_cpu_s:$cpu,
      gen_cpu_pct: (if $gwall > 0 then 100 * $gcpu / $gwall else null end)}'
  log "  $target $dir: $(jq -r '"\(.seconds * 100 | floor / 100) s, \(.mib_s|floor) MiB/s, ok \(.ok), disk \(.disk_bytes), peak RSS \(.peak_rss_kib) KiB"' <<<"$(tail -1 "$RESULTS")")"
  $ok || log "  WARNING: $target $dir was not served correctly (codes/sizes: $code $sizes)"
}

# handshakes REP TARGET TEST USER PORT SERVER_PGID BACKEND_PGID: full TLS handshakes, each
# with one authenticated request, from CONNS parallel `openssl s_time -new` for DURATION s
# (wrk and h2load resume the TLS session when they reconnect; s_time -new never does).
# s_time sends "GET <page> HTTP/1.0"; the page carries the request's own headers.
handshakes() {
  local rep=$1 target=$2 test=$3 user=$4 port=$5 server=$6 backend=$7
  local page probe s0 s1 b0 b1 t0 t1 n
  page=$'/v2/ HTTP/1.1\r\nHost: 127.0.0.1:'"$port"$'\r\nConnection: close\r\nAuthorization: '"${AUTH[$user]}"$'\r\nX-Pad:'
  # The same request once, to see the status every connection gets.
  probe=$(printf 'GET %s HTTP/1.0\r\n\r\n' "$page" |
    timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null | head -n 1 | tr -d '\r') || true
  rm -f "$W"/stime.*
  s0=$(cpu_ticks "$server")
  b0=$(cpu_ticks "$backend")
  t0=$(now)
  /usr/bin/time -f '%e %U %S' -o "$W/stime.time" bash -c '
    for i in $(seq "$1"); do
      timeout $(($3 + 30)) openssl s_time -connect "127.0.0.1:$2" -new -time "$3" -www "$4" >"$5.$i" 2>&1 &
    done
    wait' _ "$CONNS" "$port" "$DURATION" "$page" "$W/stime.out" || die "openssl s_time against $target"
  t1=$(now)
  s1=$(cpu_ticks "$server")
  b1=$(cpu_ticks "$backend")
  n=$(cat "$W"/stime.out.* | awk '/connections in .* real seconds/ {s += $1} END {print s + 0}')
  read -r wall usr sys < <(tail -n 1 "$W/stime.time")
  record --argjson rep "$rep" --arg target "$target" --arg test "$test" --arg user "$user" \
    --argjson n "$n" --argjson s "$(calc "$t1 - $t0")" --arg probe "$probe" \
    --argjson cpu "$(calc "$usr + $sys")" --argjson sv "$((s1 - s0))" --argjson bk "$((b1 - b0))" \
    --argjson tck "$TCK" \
    '{rep:$rep, target:$target, test:$test, user:$user, rps: ($n / $s), requests:$n, probe:$probe,
      errors: (if ($probe | test(" 200 ")) then 0 else $n end), gen_cpu_pct: (100 * $cpu / $s),
      server_cpu_pct: (100 * $sv / $tck / $s), backend_cpu_pct: (100 * $bk / $tck / $s)}'
  log "  $target $test $user: $(jq -r '"\(.rps|floor) handshakes/s, probe \(.probe), s_time CPU \(.gen_cpu_pct|floor) %, server CPU \(.server_cpu_pct|floor) %"' <<<"$(tail -1 "$RESULTS")")"
  settle "$server" "$backend"
}

idle() { # REP TARGET PORT PGID COUNT TEST
  local rep=$1 target=$2 port=$3 pgid=$4 count=$5 test=$6 pids r
  pids=$(group_pids "$pgid" | paste -sd,)
  r=$(timeout $((IDLE_DEADLINE + HOLD + 60)) python3 "$HERE/idle.py" --port "$port" --auth "${AUTH[u5]}" \
    --count "$count" --hold "$HOLD" --deadline "$IDLE_DEADLINE" --pids "$pids") || die "idle.py against $target"
  record --argjson rep "$rep" --arg target "$target" --arg test "$test" --argjson r "$r" \
    '{rep:$rep, target:$target, test:$test} + $r'
  log "  $target $test: $(jq -c '{answered, held, rss_base_kib, rss_kib, per_conn_kib, errors}' <<<"$r")"
  settle "$pgid"
}

tls_info() { # TARGET PORT: negotiated protocol and suite, as wrk/curl (OpenSSL 3) get them
  local info
  info=$(timeout 10 openssl s_client -connect "127.0.0.1:$2" -brief </dev/null 2>&1 |
    awk -F': ' '/^Protocol version/ {p=$2} /^Ciphersuite/ {c=$2} /^Server Temp Key/ {k=$2} END {print p ", " c ", " k}') || info=unknown
  record --arg target "$1" --arg info "$info" '{test:"tls", target:$target, info:$info}'
}

TCK=$(getconf CLK_TCK)

log "starting the registry$(main_parts && echo " and the fast upstream")"
start_registry || die "docker-registry did not start: $(tail -n 20 "$LOGS/registry.log")"
# The fast upstream serves the main loop's proxy-overhead, handshake and reconnect loads.
if main_parts; then
  start_fast || die "the fast nginx did not start: $(tail -n 20 "$LOGS/fast-error.log" "$LOGS/fast.stderr" 2>&1)"
fi
REGISTRY="http://127.0.0.1:$REGISTRY_PORT"
if want blobs; then
  # The blob that downloads fetch, put straight into the registry.
  curl -sS --max-time 30 -D "$W/seed.h" -o /dev/null -X POST "$REGISTRY/v2/bench/seed/blobs/uploads/"
  seed_loc=$(location_of "$W/seed.h" "$REGISTRY")
  code=$(curl -sS --max-time "$CURL_MAX" -o /dev/null -w '%{http_code}' -X PUT -T "$BLOB" \
    -H 'Content-Type: application/octet-stream' -H 'Expect:' "$seed_loc&digest=$DIGEST")
  [ "$code" = 201 ] || die "seeding the blob: HTTP $code"
fi

for rep in $(seq 1 "$REPS"); do
  main_parts || break
  for target in $TARGETS; do
    log "repetition $rep/$REPS: $target"
    if [ "$target" = direct ]; then
      ! want get || load "$rep" direct get none "$REGISTRY/v2/" "$REGISTRY_PGID" "$REGISTRY_PGID"
      ! want overhead || load "$rep" direct overhead none "http://127.0.0.1:$FAST_PORT/v2/" "$FAST_PGID" "$FAST_PGID"
      if want resume; then
        [ -z "$RESUME_USERS" ] ||
          load "$rep" direct resume none "http://127.0.0.1:$FAST_PORT/v2/" "$FAST_PGID" "$FAST_PGID" 1
        [ -z "$RESUME_REGISTRY_USERS" ] ||
          load "$rep" direct resume-registry none "$REGISTRY/v2/" "$REGISTRY_PGID" "$REGISTRY_PGID" 1
      fi
      if want blobs; then
        blob "$rep" direct down "$REGISTRY" none
        blob "$rep" direct up "$REGISTRY" none
      fi
      settle "$REGISTRY_PGID"
      continue
    fi
    case "$target" in
      gate | nginx | nginx-tuned | haproxy | caddy) ;;
      *) die "unknown target $target (gate, nginx, nginx-tuned, haproxy, caddy, direct)" ;;
    esac
    start "$target" "$target-$rep" "127.0.0.1:$REGISTRY_PORT"
    main_port=$PORT main_pgid=$PGID
    start "$target" "$target-fast-$rep" "127.0.0.1:$FAST_PORT"
    fast_port=$PORT fast_pgid=$PGID
    base="https://127.0.0.1:$main_port"
    [ "$rep" != 1 ] || tls_info "$target" "$main_port"
    if want idle; then
      # Idle connections first, each on a fresh process: IDLE on the fast-upstream instance
      # (the upstream does not matter for one request), IDLE_SMALL on the main one.
      idle "$rep" "$target" "$fast_port" "$fast_pgid" "$IDLE" idle
      [ "$IDLE_SMALL" = 0 ] || idle "$rep" "$target" "$main_port" "$main_pgid" "$IDLE_SMALL" idle-small
    fi
    if want get; then
      for user in $(supported "$target" $GET_USERS); do
        load "$rep" "$target" get "$user" "$base/v2/" "$main_pgid" "$REGISTRY_PGID"
      done
    fi
    if want overhead; then
      for user in $(supported "$target" $OVERHEAD_USERS); do
        load "$rep" "$target" overhead "$user" "https://127.0.0.1:$fast_port/v2/" "$fast_pgid" "$FAST_PGID"
      done
    fi
    if want handshake; then
      for user in $(supported "$target" $HANDSHAKE_USERS); do
        handshakes "$rep" "$target" handshake "$user" "$fast_port" "$fast_pgid" "$FAST_PGID"
      done
      for user in $(supported "$target" $HANDSHAKE_REGISTRY_USERS); do
        handshakes "$rep" "$target" handshake-registry "$user" "$main_port" "$main_pgid" "$REGISTRY_PGID"
      done
    fi
    if want resume; then
      for user in $(supported "$target" $RESUME_USERS); do
        load "$rep" "$target" resume "$user" "https://127.0.0.1:$fast_port/v2/" "$fast_pgid" "$FAST_PGID" 1
      done
      for user in $(supported "$target" $RESUME_REGISTRY_USERS); do
        load "$rep" "$target" resume-registry "$user" "$base/v2/" "$main_pgid" "$REGISTRY_PGID" 1
      done
    fi
    if want blobs; then
      blob "$rep" "$target" down "$base" "$main_pgid" -u "u5:${PASSWORD[u5]}"
      blob "$rep" "$target" up "$base" "$main_pgid" -u "u5:${PASSWORD[u5]}"
    fi
    forget_group "$fast_pgid"
    forget_group "$main_pgid"
    settle "$REGISTRY_PGID"
  done
done

! want ldap || ldap_part
! want token || token_part

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START_S))
log "load average after: $LOAD_AFTER; took ${ELAPSED} s"

# A full run of every part writes docs/benchmark.md afresh; of some parts, it merges them into
# it (see report.py). MERGE_INTO (a report) merges into another one.
merge=()
if [ -z "${OUT:-}" ]; then
  if [ "$SMOKE" = 1 ]; then OUT=$(mktemp /tmp/rg-e2e-smoke.XXXXXX.md); else OUT="$ROOT/docs/benchmark.md"; fi
  if [ "$SMOKE" = 0 ] && [ "$PARTS" != "$ALL_PARTS" ] && [ -f "$OUT" ]; then MERGE_INTO=${MERGE_INTO:-$OUT}; fi
fi
[ -z "${MERGE_INTO:-}" ] || merge=(--merge-into "$MERGE_INTO")
jq -n --arg cmd "$COMMAND_LINE" --arg started "$STARTED_AT" --argjson elapsed "$ELAPSED" \
  --arg load_before "$LOAD_BEFORE" --arg load_after "$LOAD_AFTER" --arg commit "$GATE_COMMIT" \
  --argjson dirty "$GATE_DIRTY" --argjson smoke "$SMOKE" --argjson reps "$REPS" \
  --argjson duration "$DURATION" --argjson conns "$CONNS" --argjson threads "$THREADS" \
  --argjson blob_mib "$BLOB_MIB" --argjson idle "$IDLE" --argjson idle_small "$IDLE_SMALL" --argjson hold "$HOLD" --arg targets "$TARGETS" --arg parts "$PARTS" \
  '{command:$cmd, started:$started, elapsed_s:$elapsed, load_before:$load_before, load_after:$load_after,
    commit:$commit, dirty_files:$dirty, smoke:($smoke == 1), reps:$reps, duration_s:$duration,
    conns:$conns, threads:$threads, blob_mib:$blob_mib, idle:$idle, idle_small:$idle_small, hold_s:$hold, targets:$targets, parts:$parts}' >"$W/meta.json"
python3 "$HERE/report.py" --results "$RESULTS" --meta "$W/meta.json" --out "$OUT" "${merge[@]}"
log "report: $OUT"
