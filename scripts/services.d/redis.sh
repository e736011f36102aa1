# shellcheck shell=bash
# Redis for scripts/services (sourced by it): one server ("redis") and a Redis Cluster of three
# masters ("redis-cluster"), both from Debian's redis-server, on 127.0.0.1 and without persistence.

REDIS_CLUSTER_SIZE=3

# --- Redis ------------------------------------------------------------------------------

redis_probe() {
  [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

REDIS_ACL_USER=ipc

# `export` lines of the TLS port and the ACL user, for `scripts/services env`.
redis_secure_env() {
  [ -s "$STATE_DIR/redis-tls.port" ] || return 0
  printf "export %s='%s'\n" \
    DEV_REDIS_TLS_URL "rediss://127.0.0.1:$(cat "$STATE_DIR/redis-tls.port")" \
    DEV_REDIS_CA "$STATE_DIR/redis/tls/ca.crt" \
    DEV_REDIS_USERNAME "$REDIS_ACL_USER" \
    DEV_REDIS_PASSWORD_FILE "$STATE_DIR/redis/password"
}

start_redis() {
  local pid
  if pid=$(service_pid redis); then
    REDIS_PORT=$(cat "$STATE_DIR/redis.port")
    if redis_probe; then say "redis: running on 127.0.0.1:$REDIS_PORT (pid $pid)"; return 0; fi
    wait_ready redis "$STATE_DIR/redis.pid" redis_probe || start_failed redis "$LOG_DIR/redis.log"
    return 0
  fi
  claim_port REDIS_PORT IPC_REDIS_PORT 16379
  rm -f "$STATE_DIR/redis.pid"
  mkdir -p "$STATE_DIR/redis" "$LOG_DIR"
  : >"$LOG_DIR/redis.log"
  echo "$REDIS_PORT" >"$STATE_DIR/redis.port"
  local started
  started=$(date +%s%N)
  # Also a TLS port and an ACL user next to the default (password-less) user, for ipc's Redis
  # security flags; a throw-away CA and password, made here, in $STATE_DIR/redis.
  claim_port REDIS_TLS_PORT IPC_REDIS_TLS_PORT 16389
  echo "$REDIS_TLS_PORT" >"$STATE_DIR/redis-tls.port"
  make_certificates "$STATE_DIR/redis/tls" server
  head -c 18 /dev/urandom | base64 | tr '+/' 'AB' >"$STATE_DIR/redis/password"
  chmod 600 "$STATE_DIR/redis/password"
  (
    umask 077
    printf 'user default on nopass ~* &* +@all\nuser %s on >%s ~* &* +@all\n' "$REDIS_ACL_USER" "$(cat "$STATE_DIR/redis/password")" >"$STATE_DIR/redis/users.acl"
  )
  spawn redis "$LOG_DIR/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save "" --appendonly no --daemonize no --logfile "$LOG_DIR/redis.log" --dir "$STATE_DIR/redis" \
    --aclfile "$STATE_DIR/redis/users.acl" --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$STATE_DIR/redis/tls/server.crt" \
    --tls-key-file "$STATE_DIR/redis/tls/server.key" --tls-ca-cert-file "$STATE_DIR/redis/tls/ca.crt" --tls-auth-clients no
  wait_ready redis "$STATE_DIR/redis.pid" redis_probe || start_failed redis "$LOG_DIR/redis.log"
  say "redis: started on 127.0.0.1:$REDIS_PORT (pid $(cat "$STATE_DIR/redis.pid"), $(elapsed_since "$started"))"
}

# --- Redis Cluster ----------------------------------------------------------------------
# Three cluster-enabled redis-server processes (masters, no replicas) joined with
# `redis-cli --cluster create`; every hash slot is served once `cluster info` says ok.

redis_cluster_ports() {
  local i
  for ((i = 0; i < REDIS_CLUSTER_SIZE; i++)); do echo $((REDIS_CLUSTER_PORT + i)); done
}

redis_cluster_nodes() {
  local port nodes=""
  for port in $(redis_cluster_ports); do nodes="$nodes${nodes:+,}127.0.0.1:$port"; done
  echo "$nodes"
}

# Every node answers and reports the cluster state ok.
redis_cluster_probe() {
  local port
  for port in $(redis_cluster_ports); do
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

# Every node answers PING (the cluster need not be formed yet).
redis_cluster_nodes_probe() {
  local port
  for port in $(redis_cluster_ports); do
    [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] || return 1
  done
}

redis_cluster_running() {
  local i
  [ -s "$STATE_DIR/redis-cluster.port" ] || return 1
  for ((i = 1; i <= REDIS_CLUSTER_SIZE; i++)); do service_pid "redis-cluster-$i" >/dev/null || return 1; done
}

# Stops every node and discards the cluster's data; succeeds if a node was running.
stop_redis_cluster() {
  local i pid stopped=1
  for ((i = 1; i <= REDIS_CLUSTER_SIZE; i++)); do
    if pid=$(service_pid "redis-cluster-$i"); then
      stop_pid "$pid" "redis-cluster-$i"
      stopped=0
    fi
    rm -f "$STATE_DIR/redis-cluster-$i.pid"
  done
  rm -rf "$STATE_DIR/redis-cluster" "$STATE_DIR/redis-cluster.port"
  return "$stopped"
}

start_redis_cluster() {
  if redis_cluster_running; then
    REDIS_CLUSTER_PORT=$(cat "$STATE_DIR/redis-cluster.port")
    if redis_cluster_probe; then say "redis-cluster: running on $(redis_cluster_nodes)"; return 0; fi
  fi
  # Not running, partly running or not formed: start afresh.
  stop_redis_cluster || true
  REDIS_CLUSTER_PORT=$(choose_port IPC_REDIS_CLUSTER_PORT 17001 "$REDIS_CLUSTER_SIZE" 10000) || exit 1
  local i port dir started output
  for port in $(redis_cluster_ports); do
    take_port "$port"
    take_port $((port + 10000))
  done
  echo "$REDIS_CLUSTER_PORT" >"$STATE_DIR/redis-cluster.port"
  mkdir -p "$LOG_DIR"
  started=$(date +%s%N)
  for ((i = 1; i <= REDIS_CLUSTER_SIZE; i++)); do
    port=$((REDIS_CLUSTER_PORT + i - 1))
    dir=$STATE_DIR/redis-cluster/$i
    mkdir -p "$dir"
    : >"$LOG_DIR/redis-cluster-$i.log"
    spawn "redis-cluster-$i" "$LOG_DIR/redis-cluster-$i.log" redis-server --port "$port" --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no --daemonize no --logfile "$LOG_DIR/redis-cluster-$i.log" --dir "$dir"
  done
  for ((i = 1; i <= REDIS_CLUSTER_SIZE; i++)); do
    wait_ready "redis-cluster-$i" "$STATE_DIR/redis-cluster-$i.pid" redis_cluster_nodes_probe ||
      start_failed_cluster "$i"
  done
  # shellcheck disable=SC2046 # one argument per node
  if ! output=$(timeout 60 redis-cli --cluster create $(redis_cluster_nodes | tr ',' ' ') --cluster-replicas 0 --cluster-yes 2>&1); then
    START_ERROR="redis-cli --cluster create failed: $(printf '%s\n' "$output" | tail -n 5)"
    start_failed_cluster 1
  fi
  wait_ready redis-cluster-1 "$STATE_DIR/redis-cluster-1.pid" redis_cluster_probe || start_failed_cluster 1
  say "redis-cluster: started on $(redis_cluster_nodes) ($(elapsed_since "$started"))"
}

# Like start_failed, for the cluster: shows the node's log and stops every node.
start_failed_cluster() {
  local node=$1
  warn "error: redis-cluster did not start: ${START_ERROR:-unknown reason}"
  if [ -s "$LOG_DIR/redis-cluster-$node.log" ]; then
    warn "--- last 40 lines of $LOG_DIR/redis-cluster-$node.log ---"
    tail -n 40 "$LOG_DIR/redis-cluster-$node.log" >&2
  fi
  stop_redis_cluster || true
  exit 1
}
