# shellcheck shell=bash
# The LDAP part of benches/e2e/run.sh (sourced by it; uses its spawn, free_port, wait_status,
# cpu_ticks, load, record, W, LOGS, CERTS, PASSWORD and AUTH): one real OpenLDAP slapd with a
# seeded directory, the gate with [ldap], and Apache httpd with mod_authnz_ldap configured by
# benches/e2e/apache-recipe.conf, all three asking that slapd about the same user.
#
# The directory is the one of tests/it/support/slapd.rs cut down to what the benchmark needs:
#
#   cn=reader,dc=example,dc=org               the search account of both proxies
#   uid=uldap,ou=people,dc=example,dc=org     the user the load signs in as (inetOrgPerson)
#   cn=pushers,ou=groups,dc=example,dc=org    groupOfNames with uldap: the recipe's push group
#
# with the tests' ACLs (passwords readable by nobody, the tree only by the reader and by bound
# users) and every password stored as {SSHA}, as slappasswd writes it.

SLAPD=/usr/sbin/slapd
LDAP_SUFFIX="dc=example,dc=org"
LDAP_ADMIN="cn=admin,$LDAP_SUFFIX"
LDAP_READER="cn=reader,$LDAP_SUFFIX"
LDAP_PEOPLE="ou=people,$LDAP_SUFFIX"
LDAP_USER="uid=uldap,$LDAP_PEOPLE"
LDAP_PUSHERS="cn=pushers,ou=groups,$LDAP_SUFFIX"

# ldap_setup: passwords, slapd.conf and the database, in $W/slapd; the reader's password for
# the gate in $W/ldap-bind. The bench user is "uldap" in PASSWORD and AUTH.
ldap_setup() {
  local dir="$W/slapd" hash_user hash_reader
  mkdir -p "$dir/db"
  LDAP_ADMIN_PASSWORD=$(openssl rand -hex 12)
  LDAP_READER_PASSWORD=$(openssl rand -hex 12)
  # shellcheck disable=SC2034,SC2154 # run.sh's associative arrays, read by its load()
  PASSWORD[uldap]=$(openssl rand -hex 12)
  # shellcheck disable=SC2034
  AUTH[uldap]="Basic $(printf '%s:%s' uldap "${PASSWORD[uldap]}" | base64 -w0)"
  hash_user=$(/usr/sbin/slappasswd -s "${PASSWORD[uldap]}")
  hash_reader=$(/usr/sbin/slappasswd -s "$LDAP_READER_PASSWORD")
  printf '%s\n' "$LDAP_READER_PASSWORD" >"$W/ldap-bind"
  chmod 600 "$W/ldap-bind"
  cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema

pidfile "$dir/slapd.pid"
argsfile "$dir/slapd.args"

modulepath /usr/lib/ldap
moduleload back_mdb

database mdb
suffix "$LDAP_SUFFIX"
rootdn "$LDAP_ADMIN"
rootpw $LDAP_ADMIN_PASSWORD
directory "$dir/db"
index objectClass eq
index uid eq

access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
access to *
  by dn.exact="$LDAP_READER" read
  by users read
  by * none
CONF
  cat >"$dir/seed.ldif" <<LDIF
dn: $LDAP_SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: $LDAP_READER
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: $hash_reader

dn: $LDAP_PEOPLE
objectClass: organizationalUnit
ou: people

dn: $LDAP_USER
objectClass: inetOrgPerson
uid: uldap
cn: LDAP bench user
sn: Bench
userPassword: $hash_user

dn: ou=groups,$LDAP_SUFFIX
objectClass: organizationalUnit
ou: groups

dn: $LDAP_PUSHERS
objectClass: groupOfNames
cn: pushers
member: $LDAP_USER
LDIF
  timeout 30 /usr/sbin/slapadd -q -f "$dir/slapd.conf" -l "$dir/seed.ldif" >"$LOGS/slapadd.log" 2>&1 ||
    die "slapadd: $(cat "$LOGS/slapadd.log")"
}

# start_slapd: slapd in the foreground on a free loopback port, logging every connection and
# operation ("stats") to tmpfs; waits (at most 15 s) until the admin can search. slapd cannot
# be told port 0, so up to 3 ports are tried. Sets SLAPD_PORT, SLAPD_PGID, SLAPD_LOG.
start_slapd() {
  local attempt _
  SLAPD_LOG="$LOGS/slapd.log"
  for attempt in 1 2 3; do
    SLAPD_PORT=$(free_port)
    spawn "$SLAPD_LOG" "$SLAPD" -f "$W/slapd/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/" -d stats
    SLAPD_PGID=$SPAWNED
    for _ in $(seq 1 150); do
      if timeout 5 ldapsearch -x -H "ldap://127.0.0.1:$SLAPD_PORT" -D "$LDAP_ADMIN" -w "$LDAP_ADMIN_PASSWORD" \
        -b "$LDAP_SUFFIX" -s base -LLL 1.1 >/dev/null 2>&1; then
        return 0
      fi
      kill -0 -- "-$SLAPD_PGID" 2>/dev/null || break
      sleep 0.1
    done
    log "slapd did not serve on port $SLAPD_PORT (attempt $attempt): $(tail -n 5 "$SLAPD_LOG")"
    forget_group "$SLAPD_PGID"
  done
  return 1
}

# The URL of the recipe's AuthLDAPURL: search ou=people (subtree) for uid=USER among
# inetOrgPerson entries: the same search as the gate's filter below.
ldap_search_url() {
  echo "ldap://127.0.0.1:$SLAPD_PORT/$LDAP_PEOPLE?uid?sub?(objectClass=inetOrgPerson)"
}

start_ldap_gate() { # NAME UPSTREAM: the gate with [ldap] and no htpasswd; sets PORT and PGID
  # Everything else at its default: login cache 5 min, LDAP pool of 4 + 4 connections.
  gate_config "$W/$1" "[upstream]
url = \"http://$2\"
[ldap]
url = \"ldap://127.0.0.1:$SLAPD_PORT\"
bind_dn = \"$LDAP_READER\"
bind_password_file = \"$W/ldap-bind\"
base = \"$LDAP_PEOPLE\"
filter = \"(&(uid=\${account})(objectClass=inetOrgPerson))\""
  spawn "$LOGS/$1.log" "$GATE" serve --config "$W/$1/proxy.toml"
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

# The recipe: benches/e2e/apache-recipe.conf.
APACHE_RECIPE=$(cat "$HERE/apache-recipe.conf")

start_ldap_apache() { # NAME UPSTREAM: Apache httpd, the recipe with LDAP; sets PORT and PGID
  local dir="$W/$1" conf
  mkdir -p "$dir" "$LOGS/$1"
  PORT=$(free_port)
  conf=${APACHE_RECIPE//\{dir\}/$dir}
  conf=${conf//\{logs\}/$LOGS/$1}
  conf=${conf//\{listen\}/127.0.0.1:$PORT}
  conf=${conf//\{upstream\}/$2}
  conf=${conf//\{cert\}/$CERTS/server.crt}
  conf=${conf//\{key\}/$CERTS/server.key}
  conf=${conf//\{ldap_url\}/$(ldap_search_url)}
  conf=${conf//\{bind_dn\}/$LDAP_READER}
  conf=${conf//\{bind_password\}/$LDAP_READER_PASSWORD}
  conf=${conf//\{pushers\}/$LDAP_PUSHERS}
  printf '%s' "$conf" >"$dir/httpd.conf"
  spawn "$LOGS/$1/stderr.log" /usr/sbin/apache2 -f "$dir/httpd.conf" -DFOREGROUND
  PGID=$SPAWNED
  wait_status "https://127.0.0.1:$PORT/v2/" 401 "$PGID"
}

# ldap_check TARGET URL: the bench user gets 200 with her password and 401 with a wrong one
# (and without any): a load of 401s would measure nothing. Leaves the proxy's login cache warm.
ldap_check() {
  local target=$1 url=$2 good bad none
  good=$(curl -sS --max-time 10 --cacert "$CA" -o /dev/null -w '%{http_code}' -u "uldap:${PASSWORD[uldap]}" "$url") || good=000
  bad=$(curl -sS --max-time 10 --cacert "$CA" -o /dev/null -w '%{http_code}' -u "uldap:wrong-${PASSWORD[uldap]}" "$url") || bad=000
  none=$(curl -sS --max-time 10 --cacert "$CA" -o /dev/null -w '%{http_code}' "$url") || none=000
  if [ "$good $bad $none" != "200 401 401" ]; then
    die "$target with LDAP: right password $good, wrong password $bad, none $none (want 200, 401, 401)"
  fi
  log "  $target: right password 200, wrong password 401, none 401"
}

ldap_ops() { # FROM_BYTE: "searches user_binds reader_binds" in slapd's log after FROM_BYTE
  tail -c "+$(($1 + 1))" "$SLAPD_LOG" | awk -v user="$LDAP_USER" -v reader="$LDAP_READER" '
    / SRCH base=/ { s++ }
    index($0, "BIND dn=\"" user "\" method=128") { u++ }
    index($0, "BIND dn=\"" reader "\" method=128") { r++ }
    END { print s + 0, u + 0, r + 0 }'
}

# ldap_load REP TARGET URL PGID: the request load as the LDAP user (load in run.sh), plus
# slapd's CPU and the searches and binds slapd saw meanwhile, in the same record.
ldap_load() {
  local rep=$1 target=$2 url=$3 pgid=$4 t0 t1 from last searches binds reader_binds
  from=$(stat -c %s "$SLAPD_LOG")
  t0=$(cpu_ticks "$SLAPD_PGID")
  load "$rep" "$target" ldap uldap "$url" "$pgid" "$REGISTRY_PGID"
  t1=$(cpu_ticks "$SLAPD_PGID")
  read -r searches binds reader_binds < <(ldap_ops "$from")
  last=$(tail -n 1 "$RESULTS")
  sed -i '$d' "$RESULTS"
  jq -c --argjson dt "$((t1 - t0))" --argjson tck "$TCK" --argjson s "$searches" \
    --argjson b "$binds" --argjson r "$reader_binds" \
    '. + {directory_cpu_pct: (100 * $dt / $tck / (.wrk.duration_us / 1e6)),
          ldap_searches: $s, ldap_user_binds: $b, ldap_reader_binds: $r}' <<<"$last" >>"$RESULTS"
  log "  $target ldap: slapd saw $searches searches, $binds binds as the user, $reader_binds as the reader"
}

# ldap_part: one slapd, then REPS times the gate and Apache in turn (A B A B), each started
# afresh, checked, loaded and stopped.
ldap_part() {
  local rep target
  ldap_setup
  start_slapd || die "slapd did not start: $(tail -n 20 "$LOGS/slapd.log")"
  for rep in $(seq 1 "$REPS"); do
    for target in gate apache; do
      log "repetition $rep/$REPS: $target with LDAP sign-in"
      start "ldap_$target" "$target-ldap-$rep" "127.0.0.1:$REGISTRY_PORT"
      [ "$rep" != 1 ] || [ "$target" != apache ] || tls_info apache "$PORT"
      ldap_check "$target" "https://127.0.0.1:$PORT/v2/"
      ldap_load "$rep" "$target" "https://127.0.0.1:$PORT/v2/" "$PGID"
      forget_group "$PGID"
      settle "$REGISTRY_PGID" "$SLAPD_PGID"
    done
  done
}
