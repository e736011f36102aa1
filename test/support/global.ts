import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

/**
 * Mocha global fixtures (.mocharc.json requires this file): start Redis, ClickHouse and Apache
 * Kafka with scripts/services before any test, and put their addresses in
 * process.env, where the tests and the `ipc` processes they spawn find them. Services that were
 * already running (a developer's `scripts/services up`) are reused and left running; at teardown
 * only the services this setup started are stopped, also when some were running and others not.
 */

export class ServicesStartError extends Error {
  override name = 'ServicesStartError'
}

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SERVICES_SCRIPT = `${REPO_ROOT}scripts/services`
const EXPORTED = [
  'KAFKA_BROKERS',
  'REDIS_URL',
  'CLICKHOUSE_URL',
  // Not REDIS_CLUSTER_NODES / CLICKHOUSE_CLUSTER, which ipc reads: every spawned ipc would use the clusters.
  'DEV_REDIS_CLUSTER_NODES',
  'DEV_CLICKHOUSE_CLUSTER',
] as const

/** The secured listeners of Kafka, Redis and ClickHouse and their throw-away credentials (the *-security tests). */
const EXPORTED_IF_PRESENT = [
  'DEV_KAFKA_SASL_SSL_BROKERS',
  'DEV_KAFKA_SSL_BROKERS',
  'DEV_KAFKA_SASL_PLAINTEXT_BROKERS',
  'DEV_KAFKA_TLS_DIR',
  'DEV_KAFKA_SASL_USERNAME',
  'DEV_KAFKA_SASL_PASSWORD_FILE',
  'DEV_REDIS_TLS_URL',
  'DEV_REDIS_CA',
  'DEV_REDIS_USERNAME',
  'DEV_REDIS_PASSWORD_FILE',
  'DEV_CLICKHOUSE_HTTPS_URL',
  'DEV_CLICKHOUSE_CA',
  'DEV_CLICKHOUSE_USER',
  'DEV_CLICKHOUSE_PASSWORD_FILE',
] as const

const SERVICE_NAMES = ['redis', 'redis-cluster', 'clickhouse', 'kafka'] as const

let setUp = false
/** The services this setup started (and teardown stops). */
let startedBySetup: string[] = []

function services(verb: string, ...args: string[]): {status: number | null; output: string; stdout: string} {
  const result = spawnSync('bash', [SERVICES_SCRIPT, verb, ...args], {
    cwd: REPO_ROOT,
    env: process.env,
    encoding: 'utf8',
    timeout: 10 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  })
  const failure = result.error ? `${result.error.message}\n` : ''
  return {status: result.status, output: `${failure}${result.stdout ?? ''}${result.stderr ?? ''}`.trim(), stdout: result.stdout ?? ''}
}

/** The services `scripts/services status` reports as running (`<name> running …` lines). */
export function runningServices(statusOutput: string): string[] {
  const running = new Set(statusOutput.split('\n').flatMap((line) => /^(\S+)\s+running\b/.exec(line)?.[1] ?? []))
  return SERVICE_NAMES.filter((name) => running.has(name))
}

/** Parses the `export NAME='value'` lines that `scripts/services env` prints. */
export function parseServicesEnv(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)='([^']*)'$/.exec(line.trim())
    if (match) values[match[1]] = match[2]
  }
  return values
}

export function mochaGlobalSetup(): void {
  // Mocha registers the fixture once per `require` naming this file (.mocharc.json plus --require).
  if (setUp) return
  setUp = true
  const alreadyRunning = runningServices(services('status').stdout)
  const started = SERVICE_NAMES.filter((name) => !alreadyRunning.includes(name))
  const up = services('up')
  if (up.status !== 0) {
    if (started.length > 0) services('down', ...started)
    throw new ServicesStartError(`scripts/services up failed (exit ${up.status}); no test can run without the services:\n${up.output}`)
  }
  startedBySetup = started

  const env = services('env')
  const values = parseServicesEnv(env.stdout)
  const missing = EXPORTED.filter((name) => !values[name])
  if (env.status !== 0 || missing.length > 0) {
    if (startedBySetup.length > 0) services('down', ...startedBySetup)
    throw new ServicesStartError(`scripts/services env did not give ${missing.join(', ') || 'its addresses'}:\n${env.output}`)
  }
  for (const name of EXPORTED) process.env[name] = values[name]
  for (const name of EXPORTED_IF_PRESENT) if (values[name]) process.env[name] = values[name]
  process.stderr.write(
    `test services (${startedBySetup.length === 0 ? 'already running' : `started: ${startedBySetup.join(', ')}`}): KAFKA_BROKERS=${values.KAFKA_BROKERS} ` +
      `REDIS_URL=${values.REDIS_URL} CLICKHOUSE_URL=${values.CLICKHOUSE_URL}\n`,
  )
}

export function mochaGlobalTeardown(): void {
  if (startedBySetup.length === 0) return
  const down = services('down', ...startedBySetup)
  startedBySetup = []
  if (down.status !== 0) process.stderr.write(`scripts/services down failed (exit ${down.status}):\n${down.output}\n`)
}
