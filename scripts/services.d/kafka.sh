# shellcheck shell=bash
# Apache Kafka in KRaft mode for scripts/services (sourced by it): the broker's jars resolved with
# Maven from scripts/kafka/pom.xml into a cache folder, then one node ("kafka", the default) or a
# three-node cluster ("kafka-cluster", on request) of combined broker+controller nodes on 127.0.0.1.
#
# A node keeps its data until `down`: `stop` (or a crash, or kill -9) followed by `up` starts it
# again on the same ports with the same data, as a restarted production broker would.

KAFKA_DIR=$REPO_DIR/scripts/kafka
KAFKA_POM=$KAFKA_DIR/pom.xml
KAFKA_CLUSTER_SIZE=3

kafka_pinned_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n 1; }

KAFKA_VERSION=${IPC_KAFKA_VERSION:-$(kafka_pinned_version)}
CACHE_DIR=${IPC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ipc}
KAFKA_LIB=$CACHE_DIR/kafka-$KAFKA_VERSION/lib
# Heap per node: the broker itself needs little (the page cache holds the log); 512 MB for the
# single node, 384 MB for each of the three cluster nodes. Override with IPC_KAFKA_HEAP (e.g. 1g).
KAFKA_HEAP=${IPC_KAFKA_HEAP:-}

java_major() { java -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p'; }

# Java 17+ (with javac, for the tests' Java producer) and Maven, from Debian when missing.
install_java_and_maven() {
  local missing=() major
  major=$(java_major 2>/dev/null || true)
  [ "${major:-0}" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
  command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}"
  major=$(java_major 2>/dev/null || true)
  [ "${major:-0}" -ge 17 ] 2>/dev/null || die "Java 17 or newer is needed for the Kafka broker; java -version says: $(java -version 2>&1 | head -n 1)"
}

# The broker's jars, once per version; later runs use the cache and need no network.
resolve_kafka() {
  [ -n "$KAFKA_VERSION" ] || die "no kafka.version in $KAFKA_POM"
  [ -f "$KAFKA_LIB/.resolved" ] && return 0
  local tmp=$KAFKA_LIB.$$.tmp output started
  started=$(date +%s%N)
  say "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies with Maven into $KAFKA_LIB"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$KAFKA_LIB")"
  if ! output=$(mvn -B -q -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1); then
    rm -rf "$tmp"
    die "Maven could not resolve Kafka $KAFKA_VERSION:
$(printf '%s\n' "$output" | grep -E 'ERROR|Could not' | head -n 10)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "Maven resolved no kafka_2.13 jar into $tmp"; }
  touch "$tmp/.resolved"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
  say "kafka: $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars ($(du -sh "$KAFKA_LIB" | cut -f1)) in $(elapsed_since "$started")"
}

kafka_java() {
  java -cp "$KAFKA_LIB/*" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" "$@"
}

# A Kafka cluster id: 16 random bytes, base64url without padding.
kafka_cluster_id() { head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22; }

# Node state: $STATE_DIR/kafka/<node>/{server.properties,data}; pid $STATE_DIR/<node>.pid.
kafka_node_dir() { echo "$STATE_DIR/kafka/$1"; }

# kafka_write_config NODE NODE_ID BROKER_PORT CONTROLLER_PORT VOTERS REPLICATION MIN_ISR
kafka_write_config() {
  local node=$1 dir
  dir=$(kafka_node_dir "$node")
  mkdir -p "$dir/data"
  sed -e "s|@NODE_ID@|$2|" -e "s|@BROKER_PORT@|$3|g" -e "s|@CONTROLLER_PORT@|$4|g" \
    -e "s|@QUORUM_VOTERS@|$5|" -e "s|@REPLICATION@|$6|g" -e "s|@MIN_ISR@|$7|g" -e "s|@LOG_DIRS@|$dir/data|" \
    "$KAFKA_DIR/server.properties" >"$dir/server.properties"
}

# kafka_format NODE CLUSTER_ID [StorageTool options…]
kafka_format() {
  local node=$1 cluster_id=$2 dir output
  shift 2
  dir=$(kafka_node_dir "$node")
  [ -f "$dir/data/meta.properties" ] && return 0
  if ! output=$(kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" "$@" 2>&1); then
    die "formatting the storage of $node failed:
$output"
  fi
}

kafka_spawn() {
  local node=$1 heap=$2 dir
  dir=$(kafka_node_dir "$node")
  mkdir -p "$LOG_DIR"
  # G1 with short pauses as kafka-run-class.sh does; GC and JIT threads sized for 2 cores.
  spawn "$node" "$LOG_DIR/$node.log" java -Xms128m -Xmx"$heap" -Xss512k \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$dir/server.properties"
}

# The broker at host:port answers a Metadata request listing `count` brokers.
kafka_answers() {
  local address=$1 count=$2
  timeout 10 kcat -b "$address" -L -m 3 2>/dev/null | grep -q "^ $count brokers:"
}

# Joins a throwaway group once, so that the broker creates and loads __consumer_offsets now rather
# than under the first consumer (which would otherwise restart after "the coordinator is loading").
kafka_warm_group_coordinator() {
  timeout 20 kcat -b "$1" -G ipc-services-warmup -o end -e -q __ipc_services_warmup >/dev/null 2>&1 || true
}

# --- one node -------------------------------------------------------------------------------
# Besides plaintext, the single node listens with SASL_SSL and with SSL that requires a client
# certificate (scripts/kafka/secure-listeners.properties), for ipc's security flags. The CA,
# broker and client certificates and the SASL password are made when its storage is formatted,
# in the node's state folder (tls/, sasl-password); `down` deletes them.

KAFKA_SASL_USER=ipc

kafka_tls_dir() { echo "$(kafka_node_dir kafka)/tls"; }
kafka_sasl_password_file() { echo "$(kafka_node_dir kafka)/sasl-password"; }



kafka_probe() { kafka_answers "127.0.0.1:$KAFKA_PORT" 1; }

start_kafka() {
  local pid started cluster_id dir
  dir=$(kafka_node_dir kafka)
  if pid=$(service_pid kafka); then
    read -r KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_SASL_SSL_PORT KAFKA_SSL_PORT KAFKA_SASL_PLAINTEXT_PORT <"$STATE_DIR/kafka.ports"
    wait_ready kafka "$STATE_DIR/kafka.pid" kafka_probe || start_failed kafka "$LOG_DIR/kafka.log"
    say "kafka: running on 127.0.0.1:$KAFKA_PORT (Apache Kafka $KAFKA_VERSION, pid $pid)"
    return 0
  fi
  [ -x "$(command -v java)" ] && [ -f "$KAFKA_LIB/.resolved" ] || die "Kafka $KAFKA_VERSION is not installed (run: scripts/services install)"
  if [ -f "$dir/data/meta.properties" ] && [ -s "$STATE_DIR/kafka.ports" ]; then
    # Stopped or crashed: start again with its data, on its ports.
    read -r KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_SASL_SSL_PORT KAFKA_SSL_PORT KAFKA_SASL_PLAINTEXT_PORT <"$STATE_DIR/kafka.ports"
  else
    rm -rf "$dir"
    claim_port KAFKA_PORT IPC_KAFKA_PORT 19092
    claim_port KAFKA_CONTROLLER_PORT IPC_KAFKA_CONTROLLER_PORT 19093
    claim_port KAFKA_SASL_SSL_PORT IPC_KAFKA_SASL_SSL_PORT 19096
    claim_port KAFKA_SSL_PORT IPC_KAFKA_SSL_PORT 19097
    claim_port KAFKA_SASL_PLAINTEXT_PORT IPC_KAFKA_SASL_PLAINTEXT_PORT 19098
    echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT $KAFKA_SASL_SSL_PORT $KAFKA_SSL_PORT $KAFKA_SASL_PLAINTEXT_PORT" >"$STATE_DIR/kafka.ports"
    kafka_write_config kafka 1 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" 1 1
    make_certificates "$(kafka_tls_dir)" broker
    head -c 18 /dev/urandom | base64 | tr '+/' 'AB' >"$(kafka_sasl_password_file)"
    chmod 600 "$(kafka_sasl_password_file)"
    sed -e "s|@BROKER_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" -e "s|@SSL_PORT@|$KAFKA_SSL_PORT|g" -e "s|@SASL_PLAINTEXT_PORT@|$KAFKA_SASL_PLAINTEXT_PORT|g" -e "s|@TLS_DIR@|$(kafka_tls_dir)|g" \
      -e "s|@SASL_USER@|$KAFKA_SASL_USER|g" -e "s|@SASL_PASSWORD@|$(cat "$(kafka_sasl_password_file)")|g" \
      "$KAFKA_DIR/secure-listeners.properties" >>"$(kafka_node_dir kafka)/server.properties"
    cluster_id=$(kafka_cluster_id)
  fi
  started=$(date +%s%N)
  if [ -n "${cluster_id:-}" ]; then
    local password
    password=$(cat "$(kafka_sasl_password_file)")
    kafka_format kafka "$cluster_id" --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$password]" \
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$password]"
  fi
  mkdir -p "$LOG_DIR"
  : >"$LOG_DIR/kafka.log"
  kafka_spawn kafka "${KAFKA_HEAP:-512m}"
  wait_ready kafka "$STATE_DIR/kafka.pid" kafka_probe || start_failed kafka "$LOG_DIR/kafka.log"
  kafka_warm_group_coordinator "127.0.0.1:$KAFKA_PORT"
  say "kafka: started on 127.0.0.1:$KAFKA_PORT (Apache Kafka $KAFKA_VERSION, pid $(cat "$STATE_DIR/kafka.pid"), $(elapsed_since "$started"))"
}

# --- three-node cluster -----------------------------------------------------------------------
# Nodes kafka-cluster-1..3 (node ids 1..3) on broker ports P..P+2 and controller ports P+100..P+102.

kafka_cluster_brokers() {
  local i brokers=""
  for ((i = 0; i < KAFKA_CLUSTER_SIZE; i++)); do brokers="$brokers${brokers:+,}127.0.0.1:$((KAFKA_CLUSTER_PORT + i))"; done
  echo "$brokers"
}

# Every running node answers and the cluster lists all of them.
kafka_cluster_probe() {
  local i
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    kafka_answers "127.0.0.1:$((KAFKA_CLUSTER_PORT + i - 1))" "$KAFKA_CLUSTER_SIZE" || return 1
  done
}

kafka_cluster_running() {
  local i
  [ -s "$STATE_DIR/kafka-cluster.port" ] || return 1
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do service_pid "kafka-cluster-$i" >/dev/null || return 1; done
}

start_kafka_cluster() {
  local i node started cluster_id="" voters="" missing=0 first_pid=""
  if [ -s "$STATE_DIR/kafka-cluster.port" ] && [ -f "$(kafka_node_dir kafka-cluster-1)/data/meta.properties" ]; then
    KAFKA_CLUSTER_PORT=$(cat "$STATE_DIR/kafka-cluster.port")
  else
    stop_kafka_cluster KILL || true
    KAFKA_CLUSTER_PORT=$(choose_port IPC_KAFKA_CLUSTER_PORT 19192 "$KAFKA_CLUSTER_SIZE" 100) || exit 1
    for ((i = 0; i < KAFKA_CLUSTER_SIZE; i++)); do
      take_port $((KAFKA_CLUSTER_PORT + i))
      take_port $((KAFKA_CLUSTER_PORT + i + 100))
    done
    echo "$KAFKA_CLUSTER_PORT" >"$STATE_DIR/kafka-cluster.port"
    cluster_id=$(kafka_cluster_id)
  fi
  [ -x "$(command -v java)" ] && [ -f "$KAFKA_LIB/.resolved" ] || die "Kafka $KAFKA_VERSION is not installed (run: scripts/services install)"
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do voters="$voters${voters:+,}$i@127.0.0.1:$((KAFKA_CLUSTER_PORT + i - 1 + 100))"; done
  started=$(date +%s%N)
  mkdir -p "$LOG_DIR"
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    node=kafka-cluster-$i
    service_pid "$node" >/dev/null && continue
    missing=1
    if [ -n "$cluster_id" ]; then
      kafka_write_config "$node" "$i" $((KAFKA_CLUSTER_PORT + i - 1)) $((KAFKA_CLUSTER_PORT + i - 1 + 100)) "$voters" 3 2
      kafka_format "$node" "$cluster_id" &
    fi
  done
  wait
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    node=kafka-cluster-$i
    service_pid "$node" >/dev/null && continue
    : >"$LOG_DIR/$node.log"
    kafka_spawn "$node" "${KAFKA_HEAP:-384m}"
  done
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    wait_ready "kafka-cluster-$i" "$STATE_DIR/kafka-cluster-$i.pid" kafka_cluster_probe || {
      warn "error: kafka-cluster did not start: ${START_ERROR:-unknown reason}"
      warn "--- last 40 lines of $LOG_DIR/kafka-cluster-$i.log ---"
      tail -n 40 "$LOG_DIR/kafka-cluster-$i.log" >&2
      exit 1
    }
  done
  first_pid=$(cat "$STATE_DIR/kafka-cluster-1.pid")
  [ -z "$cluster_id" ] || kafka_warm_group_coordinator "$(kafka_cluster_brokers)"
  if [ "$missing" -eq 1 ]; then
    say "kafka-cluster: started on $(kafka_cluster_brokers) (Apache Kafka $KAFKA_VERSION, 3 nodes, pid of node 1 $first_pid, $(elapsed_since "$started"))"
  else
    say "kafka-cluster: running on $(kafka_cluster_brokers)"
  fi
}

# Stops every node (signal TERM or KILL); `down` also discards the data. Succeeds if a node ran.
stop_kafka_cluster() {
  local signal=${1:-TERM} i pid stopped=1 pids=()
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    if pid=$(service_pid "kafka-cluster-$i"); then
      pids+=("$pid")
      stopped=0
    fi
  done
  # All at once: a node stopped alone waits for the quorum the others hold.
  for pid in "${pids[@]}"; do kill -"$signal" "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do stop_pid "$pid" kafka-cluster; done
  return "$stopped"
}

discard_kafka_cluster() {
  local i
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do rm -f "$STATE_DIR/kafka-cluster-$i.pid"; done
  rm -rf "$STATE_DIR/kafka/kafka-cluster-"* "$STATE_DIR/kafka-cluster.port"
}

# --- topics ------------------------------------------------------------------------------------

# `scripts/services topic NAME [PARTITIONS] [BROKERS]`: creates a topic on the single node (or on
# BROKERS, e.g. the cluster's) with the Kafka admin API, through ipc's own createTopic (built first
# if needed), and waits until every partition has a leader.
cmd_topic() {
  local name=${1:-} partitions=${2:-8} brokers=${3:-}
  [ -n "$name" ] || die "usage: scripts/services topic NAME [PARTITIONS] [BROKERS]"
  [[ $partitions =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive whole number, got '$partitions'"
  if [ -z "$brokers" ]; then
    [ -s "$STATE_DIR/kafka.ports" ] && service_pid kafka >/dev/null || die "kafka is not running (start it with: scripts/services up)"
    read -r KAFKA_PORT _ <"$STATE_DIR/kafka.ports"
    brokers=127.0.0.1:$KAFKA_PORT
  fi
  [ -f "$REPO_DIR/dist/src/kafka/topics.js" ] || (cd "$REPO_DIR" && npm run --silent build)
  (cd "$REPO_DIR" && node --input-type=module -e '
import {createKafka} from "./dist/src/kafka/client.js"
import {createTopic} from "./dist/src/kafka/topics.js"
const [topic, partitions, brokers] = process.argv.slice(1)
try {
  await createTopic(createKafka({brokers: brokers.split(","), logLevel: "nothing"}), {topic, partitions: Number(partitions)})
} catch (error) {
  console.error(`error: ${error.message}`)
  process.exit(1)
}
' "$name" "$partitions" "$brokers")
  say "topic $name: $partitions partitions on $brokers"
}

# `export` lines of the secured listeners, for `scripts/services env`.
kafka_secure_env() {
  local ports
  read -r -a ports <"$STATE_DIR/kafka.ports"
  [ "${#ports[@]}" -ge 5 ] || return 0
  printf "export %s='%s'\n" \
    DEV_KAFKA_SASL_SSL_BROKERS "127.0.0.1:${ports[2]}" \
    DEV_KAFKA_SSL_BROKERS "127.0.0.1:${ports[3]}" \
    DEV_KAFKA_SASL_PLAINTEXT_BROKERS "127.0.0.1:${ports[4]}" \
    DEV_KAFKA_TLS_DIR "$(kafka_tls_dir)" \
    DEV_KAFKA_SASL_USERNAME "$KAFKA_SASL_USER" \
    DEV_KAFKA_SASL_PASSWORD_FILE "$(kafka_sasl_password_file)"
}
