# shellcheck shell=bash
# Headless Chromium for the dashboard's browser test (test/integration/dashboard.test.ts), from
# Debian's package: playwright-core drives it, so no browser is downloaded from elsewhere.

cmd_browser() {
  local chromium
  if ! chromium=$(command -v chromium); then
    apt_install chromium >&2
    chromium=$(command -v chromium) || die "chromium is still missing after apt-get install"
  fi
  say "$chromium"
}
