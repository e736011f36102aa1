# shellcheck shell=bash
# A current ClickHouse engine for the tests: the npm package chdb, which embeds it in-process (no
# server, no port). Installed once per version into the cache, outside the project's dependencies:
# its engine is a ~180 MB download that only `npm test` needs.

CHDB_VERSION=${IPC_CHDB_VERSION:-3.4.0}
CHDB_DIR=$CACHE_DIR/chdb-$CHDB_VERSION

install_chdb() {
  if [ -f "$CHDB_DIR/node_modules/chdb/package.json" ] && [ -n "$(find "$CHDB_DIR/node_modules/@chdb" -name 'libchdb.so' -print -quit 2>/dev/null)" ]; then
    return
  fi
  local started=$SECONDS
  say "chdb: installing chdb@$CHDB_VERSION (an embedded ClickHouse engine, ~180 MB) into $CHDB_DIR" >&2
  mkdir -p "$CHDB_DIR.tmp"
  printf '{"name":"ipc-test-chdb","private":true}\n' >"$CHDB_DIR.tmp/package.json"
  npm install --prefix "$CHDB_DIR.tmp" --no-audit --no-fund --loglevel=error "chdb@$CHDB_VERSION" >&2
  rm -rf "$CHDB_DIR"
  mv "$CHDB_DIR.tmp" "$CHDB_DIR"
  say "chdb: installed in $((SECONDS - started)) s" >&2
}

cmd_chdb() {
  install_chdb
  say "$CHDB_DIR"
}
