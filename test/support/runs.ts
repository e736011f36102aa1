import {type ClickHouseClient, createClient as createClickHouseClient} from '@clickhouse/client'
import {expect} from 'chai'
import {Kafka, logLevel} from 'kafkajs'
import {readFileSync} from 'node:fs'
import {EventGenerator} from '../../src/loadgen/generator.js'
import {type CliResult, runIpc, type RunningCli, startIpc, waitFor} from './cli.js'
import {committedTotal} from './kafka.js'
import {serviceUrls} from './services.js'

/** `ipc produce` and `ipc consume` runs for the integration tests, and what they stored and committed. */

export interface ProduceJson {
  messagesSent: number
  distinctDevices: number
}

export interface ConsumeJson {
  reason: string
  totalDevices: number
  stats: {
    processed: number
    valid: number
    invalid: number
    deadLettered: number
    backendErrors: number
    invalidByReason: Record<string, number>
    committed: Record<string, string>
  }
}

export function describeRun(result: CliResult): string {
  return `exit ${result.code} (signal ${result.signal}); stderr: ${result.stderr.slice(-3000)}; stdout: ${result.stdout.slice(0, 2000)}`
}

export function parseJson<T>(result: CliResult): T {
  expect(result.code, describeRun(result)).to.equal(0)
  return JSON.parse(result.stdout) as T
}

/**
 * `ipc produce` of `topic` as fast as the broker allows, printing its summary as JSON unless `json`
 * is false; `flags` adds or overrides flags (e.g. `{'--brokers': …, '--num-messages': '10'}`).
 */
export function produceArgs(topic: string, flags: Record<string, string>, {json = true} = {}): string[] {
  const all = {'--pause-ms': '0', '--batch': '1000', ...flags}
  return ['produce', '--topic', topic, ...(json ? ['--json'] : []), ...Object.entries(all).flat()]
}

export async function produce(topic: string, flags: Record<string, string>, env?: NodeJS.ProcessEnv): Promise<ProduceJson> {
  return parseJson<ProduceJson>(await runIpc(produceArgs(topic, flags), {env}))
}

/** Starts `ipc produce` in the background (e.g. paced with --pause-ms, so a stream flows while a test acts). */
export function startProduce(topic: string, flags: Record<string, string>, env?: NodeJS.ProcessEnv): RunningCli {
  return startIpc(produceArgs(topic, flags), {env, timeoutMs: 300_000})
}

export interface ConsumeArgsOptions {
  /** Print the summary as JSON (--json). Default true. */
  json?: boolean
  /** Read a new group from the start of the topic (--from-beginning). Default true. */
  fromBeginning?: boolean
}

/**
 * `ipc consume` of `topic` in `group`; `flags` adds or overrides flags (e.g. `{'--backend': 'memory',
 * '--until-idle': '5s'}`, or `{'--brokers': …}` for another cluster).
 */
export function consumeArgs(topic: string, group: string, flags: Record<string, string> = {}, options: ConsumeArgsOptions = {}): string[] {
  const {json = true, fromBeginning = true} = options
  const all: Record<string, string> = {'--topic': topic, '--group': group, ...flags}
  return ['consume', ...Object.entries(all).flat(), ...(fromBeginning ? ['--from-beginning'] : []), ...(json ? ['--json'] : [])]
}

/** {@link consumeArgs} into a ClickHouse database. */
export function clickhouseConsumeArgs(
  topic: string,
  database: string,
  group: string,
  flags: Record<string, string> = {},
  options: ConsumeArgsOptions = {},
): string[] {
  return consumeArgs(topic, group, {'--backend': 'clickhouse', '--clickhouse-database': database, ...flags}, options)
}

/** {@link consumeArgs} into a Redis key. */
export function redisConsumeArgs(topic: string, key: string, group: string, flags: Record<string, string> = {}, options: ConsumeArgsOptions = {}): string[] {
  return consumeArgs(topic, group, {'--backend': 'redis', '--redis-key': key, ...flags}, options)
}

/** `ipc count` of a ClickHouse database. */
export function clickhouseCount(database: string): Promise<CliResult> {
  return runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database])
}

export function kafka(brokers: readonly string[] = serviceUrls().kafkaBrokers): Kafka {
  return new Kafka({clientId: 'ipc-reliability-test', brokers: [...brokers], logLevel: logLevel.NOTHING})
}

/** Direct ClickHouse access (not through a relay), for checking what a consumer stored. */
export class ClickHouseProbe {
  readonly client: ClickHouseClient = createClickHouseClient({url: serviceUrls().clickhouseUrl})

  constructor(readonly database: string) {}

  async query<T>(query: string): Promise<T[]> {
    const result = await this.client.query({query, format: 'JSONEachRow'})
    return result.json<T>()
  }

  /** Rows in the events table; 0 while the table does not exist yet. */
  async rows(): Promise<number> {
    const exists = await this.query<{n: string}>(`SELECT count() AS n FROM system.tables WHERE database = '${this.database}' AND name = 'events'`)
    if (Number(exists[0].n) === 0) return 0
    const [row] = await this.query<{n: string}>(`SELECT count() AS n FROM \`${this.database}\`.events`)
    return Number(row.n)
  }

  async distinctDevices(): Promise<number> {
    const [row] = await this.query<{n: string}>(`SELECT uniqExact(device_ip) AS n FROM \`${this.database}\`.events`)
    return Number(row.n)
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}

/** Peak resident memory (VmHWM) of a running process in MiB, or undefined once it has gone. */
export function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** Polls a running process's VmHWM every `intervalMs`; `stop()` returns the largest value seen. */
export function samplePeakRss(running: RunningCli, intervalMs = 200): {stop: () => number} {
  let peak = 0
  const sample = () => {
    const value = peakRssMiB(running.child.pid)
    if (value !== undefined && running.child.exitCode === null) peak = Math.max(peak, value)
  }
  const timer = setInterval(sample, intervalMs)
  return {
    stop: () => {
      sample()
      clearInterval(timer)
      return peak
    },
  }
}

export {sleep} from '../../src/util/async.js'

/** Waits until `value()` differs from `from` (e.g. rows grew: a flush happened). */
export async function waitForChange(what: string, value: () => Promise<number>, from: number, timeoutMs = 60_000, intervalMs = 25): Promise<number> {
  return waitFor(
    what,
    async () => {
      const now = await value()
      return now === from ? undefined : now
    },
    timeoutMs,
    intervalMs,
  )
}

/** Lines of a process's stderr matching `pattern`. */
export function linesMatching(text: string, pattern: RegExp): string[] {
  return text.split('\n').filter((line) => pattern.test(line))
}

/** Reports a figure in the test output (collected into the README's delivery guarantees). */
export function reportFigure(line: string): void {
  process.stdout.write(`      ↳ ${line}\n`)
}

/** The device IPs `ipc produce --seed seed --num-devices n --num-messages m` sends (the message keys). */
export function generatedDevices(seed: number, numDevices: number, numMessages: number): Set<string> {
  const generator = new EventGenerator({numDevices, seed})
  const devices = new Set<string>()
  for (let i = 0; i < numMessages; i++) devices.add(generator.next().key)
  return devices
}

/** Every offset committed, every event stored, and `ipc count` equal to the producer's devices. */
export async function expectEverythingCounted(
  probe: ClickHouseProbe,
  database: string,
  group: string,
  topic: string,
  produced: ProduceJson,
  brokers?: readonly string[],
): Promise<void> {
  // A retried produce request may have been stored twice, so the topic can hold more than was sent.
  const committed = await committedTotal(group, topic, brokers)
  const rows = await probe.rows()
  expect(committed, 'every offset committed').to.be.at.least(produced.messagesSent)
  expect(rows, 'every committed event stored').to.be.at.least(committed)
  const counted = await clickhouseCount(database)
  expect(counted.code, describeRun(counted)).to.equal(0)
  expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
}
