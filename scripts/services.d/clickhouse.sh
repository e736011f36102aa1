# shellcheck shell=bash
# ClickHouse for scripts/services (sourced by it): one server ("clickhouse") from Debian's
# clickhouse-server on 127.0.0.1, configured from scripts/clickhouse/{config,users}.xml. Its data is
# discarded on every start; remote_servers holds a one-shard cluster of this server alone.

CLICKHOUSE_TEMPLATES=$REPO_DIR/scripts/clickhouse
CLICKHOUSE_DEV_CLUSTER=ipc_dev

clickhouse_probe() {
  [ "$(http_get "$CLICKHOUSE_HTTP_PORT" /ping)" = "Ok." ] &&
    [ "$(http_get "$CLICKHOUSE_HTTP_PORT" '/?query=SELECT%201')" = 1 ]
}

# A value as a sed replacement (between | delimiters).
clickhouse_sed_value() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# Writes $STATE_DIR/clickhouse/{config,users}.xml from the templates, their @NAME@ fields filled in.
write_clickhouse_config() {
  local dir=$STATE_DIR/clickhouse file
  mkdir -p "$dir/data/tmp" "$dir/data/user_files" "$dir/data/format_schemas" "$LOG_DIR/clickhouse"
  # The password of the user ipc_writer, for the tests of credentials over HTTPS.
  if [ ! -s "$dir/password" ]; then
    head -c 18 /dev/urandom | base64 | tr '+/' 'AB' >"$dir/password"
    chmod 600 "$dir/password"
  fi
  for file in config.xml users.xml; do
    sed -e "s|@LOG_DIR@|$(clickhouse_sed_value "$LOG_DIR/clickhouse")|g" \
      -e "s|@DATA_DIR@|$(clickhouse_sed_value "$dir/data")|g" \
      -e "s|@USERS_CONFIG@|$(clickhouse_sed_value "$dir/users.xml")|g" \
      -e "s|@HTTP_PORT@|$CLICKHOUSE_HTTP_PORT|g" -e "s|@TCP_PORT@|$CLICKHOUSE_TCP_PORT|g" \
      -e "s|@INTERSERVER_PORT@|$CLICKHOUSE_INTERSERVER_PORT|g" -e "s|@HTTPS_PORT@|$CLICKHOUSE_HTTPS_PORT|g" \
      -e "s|@TLS_DIR@|$(clickhouse_sed_value "$STATE_DIR/clickhouse/tls")|g" \
      -e "s|@CLUSTER@|$(clickhouse_sed_value "$CLICKHOUSE_DEV_CLUSTER")|g" \
      -e "s|@WRITER_PASSWORD@|$(clickhouse_sed_value "$(cat "$dir/password")")|g" \
      "$CLICKHOUSE_TEMPLATES/$file" >"$dir/$file"
  done
}

# `export` lines of the HTTPS port, for `scripts/services env`.
clickhouse_secure_env() {
  [ -s "$STATE_DIR/clickhouse-https.port" ] || return 0
  printf "export %s='%s'\n" \
    DEV_CLICKHOUSE_HTTPS_URL "https://127.0.0.1:$(cat "$STATE_DIR/clickhouse-https.port")" \
    DEV_CLICKHOUSE_CA "$STATE_DIR/clickhouse/tls/ca.crt" \
    DEV_CLICKHOUSE_USER ipc_writer \
    DEV_CLICKHOUSE_PASSWORD_FILE "$STATE_DIR/clickhouse/password"
}

clickhouse_logs() {
  echo "$LOG_DIR/clickhouse/stderr.log" "$LOG_DIR/clickhouse/clickhouse-server.err.log" \
    "$LOG_DIR/clickhouse/clickhouse-server.log"
}

start_clickhouse() {
  local pid server
  if pid=$(service_pid clickhouse); then
    read -r CLICKHOUSE_HTTP_PORT CLICKHOUSE_TCP_PORT <"$STATE_DIR/clickhouse.ports"
    if clickhouse_probe; then
      say "clickhouse: running on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (native $CLICKHOUSE_TCP_PORT, pid $pid)"
      return 0
    fi
    # shellcheck disable=SC2046
    wait_ready clickhouse "$STATE_DIR/clickhouse.pid" clickhouse_probe ||
      start_failed clickhouse $(clickhouse_logs)
    return 0
  fi
  server=$(find_program clickhouse-server) || die "clickhouse-server not found (run: scripts/services install)"
  claim_port CLICKHOUSE_HTTP_PORT IPC_CLICKHOUSE_HTTP_PORT 18123
  claim_port CLICKHOUSE_TCP_PORT IPC_CLICKHOUSE_TCP_PORT 19000
  claim_port CLICKHOUSE_INTERSERVER_PORT IPC_CLICKHOUSE_INTERSERVER_PORT 19009
  claim_port CLICKHOUSE_HTTPS_PORT IPC_CLICKHOUSE_HTTPS_PORT 18443
  echo "$CLICKHOUSE_HTTPS_PORT" >"$STATE_DIR/clickhouse-https.port"
  make_certificates "$STATE_DIR/clickhouse/tls" server
  rm -f "$STATE_DIR/clickhouse.pid"
  # After `stop clickhouse` the data stays (a test of a stopped backend sees it come back whole);
  # any other start is a fresh server.
  if [ -f "$STATE_DIR/clickhouse.stopped" ]; then
    rm -f "$STATE_DIR/clickhouse.stopped"
  else
    rm -rf "$STATE_DIR/clickhouse/data"
  fi
  rm -rf "$LOG_DIR/clickhouse"
  write_clickhouse_config
  echo "$CLICKHOUSE_HTTP_PORT $CLICKHOUSE_TCP_PORT" >"$STATE_DIR/clickhouse.ports"
  local started
  started=$(date +%s%N)
  spawn clickhouse "$LOG_DIR/clickhouse/stderr.log" \
    "$server" --config-file="$STATE_DIR/clickhouse/config.xml"
  # shellcheck disable=SC2046 # one argument per log file
  wait_ready clickhouse "$STATE_DIR/clickhouse.pid" clickhouse_probe ||
    start_failed clickhouse $(clickhouse_logs)
  say "clickhouse: started on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (native $CLICKHOUSE_TCP_PORT, pid $(cat "$STATE_DIR/clickhouse.pid"), $(elapsed_since "$started"))"
}
