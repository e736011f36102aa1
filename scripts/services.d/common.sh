# shellcheck shell=bash
# Shared helpers for scripts/services and the service files in scripts/services.d (sourced by
# scripts/services before them): messages, paths, Debian packages, processes, ports, probes and
# start-up. They use the settings scripts/services defines (REPO_DIR, STATE_DIR, START_TIMEOUT,
# PACKAGE_FILES).

# Seconds since a `date +%s%N` reading, to one decimal.
elapsed_since() {
  local ms=$((($(date +%s%N) - $1) / 1000000))
  printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() { warn "error: $*"; exit 1; }

# Absolute state dir (ClickHouse needs absolute paths); every derived path below.
set_paths() {
  [[ $START_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "IPC_START_TIMEOUT must be a whole number of seconds, got '$START_TIMEOUT'"
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd)
  LOG_DIR=$STATE_DIR/log
}

# Finds a program on PATH or in the sbin folders a non-root PATH may lack.
find_program() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for dir in /usr/sbin /sbin /usr/local/sbin /usr/local/bin; do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  return 1
}

missing_packages() {
  local package file
  for package in "${!PACKAGE_FILES[@]}"; do
    file=${PACKAGE_FILES[$package]}
    find_program "$file" >/dev/null || echo "$package"
  done | sort
}

# Installs Debian packages as root (or says which to install).
apt_install() {
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: $*. Install them as root:
  sudo apt-get update && sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get to install them with"
  say "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "$@" || die "apt-get install failed for: $*"
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  apt_install $missing
  missing=$(missing_packages)
  # shellcheck disable=SC2086
  [ -z "$missing" ] || die "still missing after apt-get install: $(echo $missing)"
}

# --- processes --------------------------------------------------------------------------

# Succeeds while pid runs (a zombie waiting to be reaped counts as stopped).
pid_alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Pid of a service recorded in its pid file, if that process still runs the service's program.
service_pid() {
  local name=$1 pid program
  [ -s "$STATE_DIR/$name.pid" ] || return 1
  pid=$(tr -dc 0-9 <"$STATE_DIR/$name.pid")
  pid_alive "$pid" || return 1
  case $name in
    redis | redis-cluster-*) program=redis-server ;;
    clickhouse) program=clickhouse ;;
    kafka | kafka-cluster-*) program=kafka.Kafka ;;
  esac
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$program" || return 1
  echo "$pid"
}

stop_pid() {
  local pid=$1 name=$2 waited=0
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    if [ "$waited" -ge 300 ]; then
      warn "$name (pid $pid) did not stop within 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# --- ports and probes -------------------------------------------------------------------

PORTS_TAKEN=" "

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Chooses a port: an explicitly set one must be free; a default one moves up to a free port.
# With `span` the next span-1 ports must be free too; with `offset` also each port + offset
# (Redis Cluster bus ports).
choose_port() {
  local variable=$1 default=$2 span=${3:-1} offset=${4:-0} port i busy
  if [ -n "${!variable:-}" ]; then
    port=${!variable}
    [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ $((port + span - 1 + offset)) -le 65535 ] ||
      die "$variable must be a port number, got '$port'"
    for ((i = 0; i < span; i++)); do
      port_in_use $((port + i)) &&
        die "port $((port + i)) on 127.0.0.1 ($variable) is already in use by another program"
      if [ "$offset" -ne 0 ] && port_in_use $((port + i + offset)); then
        die "port $((port + i + offset)) on 127.0.0.1 (bus port for $variable) is already in use by another program"
      fi
    done
    echo "$port"
    return 0
  fi
  for ((port = default; port < default + 200; port++)); do
    busy=0
    for ((i = 0; i < span; i++)); do
      if [[ $PORTS_TAKEN == *" $((port + i)) "* ]] || port_in_use $((port + i)); then busy=1; break; fi
      if [ "$offset" -ne 0 ] && { [[ $PORTS_TAKEN == *" $((port + i + offset)) "* ]] || port_in_use $((port + i + offset)); }; then
        busy=1
        break
      fi
    done
    if [ "$busy" -eq 0 ]; then echo "$port"; return 0; fi
  done
  die "no free port found from $default (set $variable)"
}

take_port() { PORTS_TAKEN="$PORTS_TAKEN$1 "; }

# claim_port NAME SETTING DEFAULT: chooses a port as choose_port does, takes it, and stores it in
# the variable NAME.
claim_port() {
  local port
  port=$(choose_port "$2" "$3") || exit 1
  take_port "$port"
  printf -v "$1" '%s' "$port"
}

# HTTP GET on 127.0.0.1:port; prints the body of a 200 response.
http_get() {
  local port=$1 path=$2
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
    IFS= read -r status <&3 || exit 1
    case $status in *" 200 "*) ;; *) exit 1 ;; esac
    while IFS= read -r line <&3; do [ "$line" = $'"'"'\r'"'"' ] || [ -z "$line" ] && break; done
    cat <&3' "$port" "$path" 2>/dev/null
}

# Starts a service in the background in its own session (so a Ctrl-C meant for a test run
# does not reach it) with output to its log, and records its pid.
spawn() {
  local name=$1 log=$2
  shift 2
  (cd "$STATE_DIR" && exec setsid "$@" </dev/null >>"$log" 2>&1 9>&-) &
  echo $! >"$STATE_DIR/$name.pid"
}

# Calls probe until it succeeds, the process dies or the deadline passes.
wait_ready() {
  local name=$1 pid_file=$2 probe=$3 deadline=$((SECONDS + START_TIMEOUT)) pid=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -s "$pid_file" ]; then
      pid=$(tr -dc 0-9 <"$pid_file")
      pid_alive "$pid" || { START_ERROR="$name exited during start-up"; return 1; }
      if $probe; then return 0; fi
    fi
    sleep 0.1
  done
  START_ERROR="$name was not ready within ${START_TIMEOUT} s"
  return 1
}

# Prints why a service did not start with the end of its logs, stops what is left of it,
# and exits non-zero.
start_failed() {
  local name=$1 pid log
  shift
  warn "error: $name did not start: ${START_ERROR:-unknown reason}"
  for log in "$@"; do
    [ -s "$log" ] || continue
    warn "--- last 40 lines of $log ---"
    tail -n 40 "$log" >&2
  done
  if [ -s "$STATE_DIR/$name.pid" ]; then
    pid=$(tr -dc 0-9 <"$STATE_DIR/$name.pid")
    stop_pid "$pid" "$name"
    rm -f "$STATE_DIR/$name.pid"
  fi
  exit 1
}

# Serialises the commands that change the services (up, stop, down) on one state dir.
lock_state() {
  exec 9>"$STATE_DIR/.lock"
  flock -w 300 9 || die "another scripts/services command holds $STATE_DIR/.lock"
}

# make_certificates DIR NAME: a throw-away CA (DIR/ca.crt), a server certificate for 127.0.0.1 and
# localhost (DIR/NAME.crt, NAME.key, and NAME.pem: PKCS#8 key and certificate, as Kafka reads PEM)
# and a client certificate (DIR/client.crt, client.key), for the services' TLS listeners.
make_certificates() {
  local dir=$1 name=$2 output
  rm -rf "$dir"
  mkdir -p "$dir"
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  if ! output=$( (
    cd "$dir" &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=ipc dev CA" &&
      openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj "/CN=127.0.0.1" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >$name.ext &&
      openssl x509 -req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $name.crt -days 30 -extfile $name.ext &&
      openssl pkcs8 -topk8 -nocrypt -in $name.key -out $name.pk8 &&
      cat $name.pk8 $name.crt >$name.pem &&
      openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=ipc-client" &&
      openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30 &&
      rm -f ./*.csr ./*.srl $name.ext $name.pk8 &&
      chmod 600 ./*.key $name.pem
  ) 2>&1); then
    die "making the TLS certificates in $dir failed:
$output"
  fi
}
