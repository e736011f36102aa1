# shellcheck shell=bash
# Prometheus and promtool for the tests of the alerting and recording rules in deploy/prometheus/
# (test/unit/prometheus-rules.test.ts runs promtool, test/integration/prometheus-alerts.test.ts a
# Prometheus server), from Debian's `prometheus` package (2.42 on Debian 12).

cmd_prometheus() {
  local prometheus
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    apt_install prometheus >&2
    command -v promtool >/dev/null 2>&1 || die "promtool is still missing after apt-get install prometheus"
  fi
  prometheus=$(command -v prometheus) || die "prometheus is still missing after apt-get install prometheus"
  say "$prometheus"
}
