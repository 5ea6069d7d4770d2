# shellcheck shell=bash
# The token part of benches/e2e/run.sh (sourced by it; uses its start, spawn, gate_config,
# wait_status, load, forget_group, log, die, W, LOGS, CERTS, HTPASSWD, GATE, AUTH and REPS):
# issue #10's row, tokens issued per second by the gate in token mode for a user whose login
# is cached, as `docker pull` asks for one token per repository and action set.
#
# The gate runs as a token server alone (no [upstream]); the load is wrk's keep-alive
# `GET /auth?service=...&scope=repository:bench/app:pull,push` with the bcrypt cost-5 user's
# Basic credentials, each answer a freshly signed ES256 JWT.

TOKEN_SERVICE=registry.bench
TOKEN_QUERY="service=$TOKEN_SERVICE&scope=repository:bench/app:pull,push"

start_token() { # NAME (UPSTREAM unused: a token server alone)
  if [ ! -f "$W/token-keys/token.key" ]; then
    "$GATE" certs generate --token --out "$W/token-keys" >/dev/null || return 1
  fi
  gate_config "$W/$1" "[auth]
mode = \"token\"
htpasswd = \"$HTPASSWD\"
[token]
service = \"$TOKEN_SERVICE\"
key = \"$W/token-keys/token.key\"
cert = \"$W/token-keys/token.crt\""
  spawn "$LOGS/$1.log" "$GATE" serve --config "$W/$1/proxy.toml"
  PGID=$SPAWNED
  # Anonymous: a token with nothing granted, 200.
  wait_status "https://127.0.0.1:$PORT/auth?$TOKEN_QUERY" 200 "$PGID"
}

# token_check URL: the user gets a token granting pull and push; a wrong password gets 401.
token_check() {
  local url=$1 token payload claims code
  token=$(curl -sk --http1.1 -H "Authorization: ${AUTH[u5]}" "$url" | jq -r .token)
  if [ -z "$token" ] || [ "$token" = null ]; then die "token: no token for u5 from $url"; fi
  payload=$(cut -d. -f2 <<<"$token" | tr '_-' '/+')
  while [ $((${#payload} % 4)) -ne 0 ]; do payload="$payload="; done
  claims=$(base64 -d <<<"$payload" 2>/dev/null || true)
  case "$claims" in
    *'"actions":["pull","push"]'*) ;;
    *) die "token: u5's token does not grant pull,push: $claims" ;;
  esac
  code=$(curl -sk --http1.1 -o /dev/null -w '%{http_code}' -u "u5:wrong" "$url")
  [ "$code" = 401 ] || die "token: a wrong password got $code, not 401"
}

token_part() {
  local rep url
  for rep in $(seq 1 "$REPS"); do
    log "repetition $rep/$REPS: gate token endpoint"
    start token "gate-token-$rep" -
    url="https://127.0.0.1:$PORT/auth?$TOKEN_QUERY"
    token_check "$url"
    load "$rep" gate token u5 "$url" "$PGID" none
    forget_group "$PGID"
  done
}
