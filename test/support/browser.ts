import {type Browser, chromium} from 'playwright-core'

/** Debian's Chromium (scripts/services browser); the test command exports its path. */
export const CHROMIUM = process.env.IPC_CHROMIUM ?? '/usr/bin/chromium'
/** Without the networking switches, Chromium's own calls home wait on this machine's closed network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Headless Chromium as the dashboard tests drive it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({executablePath: CHROMIUM, args: CHROMIUM_ARGS})
}
