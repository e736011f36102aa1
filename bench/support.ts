/**
 * Shared by the service benchmarks (consume, produce, count): the local services and their CPU time,
 * child processes with time limits and peak memory, statistics, and the results file.
 */
import {execFile, spawn, type StdioOptions} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {createClient as createClickHouseClient} from '@clickhouse/client'
import {createClient as createRedisClient} from '@redis/client'
import {createKafka} from '../src/kafka/client.js'
import {createTopic as createKafkaTopic} from '../src/kafka/topics.js'
import {errorMessage} from '../src/util/errors.js'
import {sleep} from '../src/util/async.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results')
const SERVICES = join(REPO_ROOT, 'scripts', 'services')
const GNU_TIME = '/usr/bin/time'

const run = promisify(execFile)

export class BenchError extends Error {
  override name = 'BenchError'
}

/** Addresses of the local services, as `scripts/services env` prints them. */
export interface ServiceEnv {
  KAFKA_BROKERS: string
  REDIS_URL: string
  CLICKHOUSE_URL: string
  [name: string]: string
}

/**
 * Runs `work` with the local services (`scripts/services`, state dir from IPC_STATE_DIR). Services
 * that were already running are reused and left running; otherwise they are started here and
 * stopped afterwards. Their addresses are also put in this process's environment.
 */
export async function withServices<T>(work: (env: ServiceEnv) => Promise<T>): Promise<T> {
  const alreadyRunning = await run('bash', [SERVICES, 'status']).then(
    () => true,
    () => false,
  )
  if (!alreadyRunning) {
    progress('starting the local services (scripts/services up)')
    await run('bash', [SERVICES, 'up'], {timeout: 300_000})
  }
  try {
    const {stdout} = await run('bash', [SERVICES, 'env'])
    const env: Record<string, string> = {}
    for (const match of stdout.matchAll(/^export (\w+)='([^']*)'$/gm)) env[match[1]] = match[2]
    for (const name of ['KAFKA_BROKERS', 'REDIS_URL', 'CLICKHOUSE_URL']) {
      if (!env[name]) throw new BenchError(`scripts/services env printed no ${name}`)
    }
    Object.assign(process.env, env)
    return await work(env as ServiceEnv)
  } finally {
    if (!alreadyRunning) {
      progress('stopping the local services (scripts/services down)')
      await run('bash', [SERVICES, 'down'], {timeout: 120_000}).catch((error: Error) => progress(`scripts/services down failed: ${error.message}`))
    }
  }
}

/** Creates a topic with the admin API on the brokers of KAFKA_BROKERS. */
export async function createTopic(name: string, partitions: number): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS
  if (!brokers) throw new BenchError('KAFKA_BROKERS is not set (withServices sets it)')
  await createKafkaTopic(createKafka({brokers: brokers.split(','), clientId: 'ipc-bench'}), {topic: name, partitions})
}

/** Low (oldest kept) and high (next to append) offset of every partition of a topic. */
export async function topicOffsets(brokers: string, topic: string): Promise<Array<{partition: number; low: number; high: number}>> {
  const admin = createKafka({brokers: brokers.split(','), clientId: 'ipc-bench'}).admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.map((offset) => ({partition: offset.partition, low: Number(offset.low), high: Number(offset.high)}))
  } finally {
    await admin.disconnect()
  }
}

/** Deletes base keys and every key a backend derived from them (`key…` and `{key}…`). */
export async function deleteRedisKeys(url: string, baseKeys: readonly string[]): Promise<void> {
  const client = createRedisClient({url})
  await client.connect()
  try {
    for (const key of baseKeys) {
      for (const pattern of [`${key}*`, `{${key}}*`]) {
        for await (const found of client.scanIterator({MATCH: pattern, COUNT: 1000})) if (found.length > 0) await client.del(found)
      }
    }
  } finally {
    await client.close()
  }
}

export async function dropClickHouseDatabases(url: string, databases: readonly string[]): Promise<void> {
  const client = createClickHouseClient({url})
  try {
    for (const database of databases) await client.command({query: `DROP DATABASE IF EXISTS ${database}`})
  } finally {
    await client.close()
  }
}

/**
 * Waits (at most `maxMs`) until the ClickHouse server runs no merge, so that the background work a
 * previous run left behind does not take the CPU of the next contender on a 2-core machine.
 */
export async function waitForClickHouseMerges(url: string, maxMs = 20_000): Promise<void> {
  const client = createClickHouseClient({url})
  const deadline = Date.now() + maxMs
  try {
    while (Date.now() < deadline) {
      const [row] = await (await client.query({query: 'SELECT count() AS merges FROM system.merges', format: 'JSONEachRow'})).json<{merges: string | number}>()
      if (Number(row.merges) === 0) return
      await sleep(200)
    }
  } finally {
    await client.close()
  }
}

/** `prefix_<base36 time>_<random>`: letters, digits and `_`, valid as topic, group, key and database. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 36 ** 4).toString(36)}`
}

export interface ChildResult {
  code: number | null
  stdout: string
  stderr: string
  wallMs: number
  /** Peak resident set size (kB): from GNU time when installed, else VmHWM sampled every 50 ms. */
  peakRssKb?: number
  /** User + system CPU time of the whole process (GNU time only). */
  cpuMs?: number
}

export interface ChildOptions {
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  /** A file to feed to stdin. */
  stdinFile?: string
  /** Keep stdout (default) or discard it. */
  stdout?: 'keep' | 'discard'
  /** Peak RSS and CPU time of the process. */
  measureResources?: boolean
}

/** Runs a program to completion; kills it (and fails) after `timeoutMs`. */
export async function runChild(command: string, args: readonly string[], options: ChildOptions): Promise<ChildResult> {
  const resourceFile = options.measureResources && existsSync(GNU_TIME) ? join(tmpdir(), `ipc-bench-time-${process.pid}-${Date.now()}`) : undefined
  const [file, argv] = resourceFile ? [GNU_TIME, ['-f', '%M %U %S', '-o', resourceFile, command, ...args]] : [command, [...args]]
  const stdinFd = options.stdinFile ? openSync(options.stdinFile, 'r') : 'ignore'
  const stdio: StdioOptions = [stdinFd, options.stdout === 'discard' ? 'ignore' : 'pipe', 'pipe']
  const started = process.hrtime.bigint()
  const child = spawn(file, argv, {cwd: REPO_ROOT, env: options.env ?? process.env, stdio})
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  let sampledHwmKb: number | undefined
  const sampler =
    options.measureResources && !resourceFile
      ? setInterval(() => {
          const hwm = readVmHwmKb(child.pid)
          if (hwm !== undefined) sampledHwmKb = Math.max(sampledHwmKb ?? 0, hwm)
        }, 50)
      : undefined
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, options.timeoutMs)
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (exitCode) => resolve(exitCode))
    })
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6
    if (timedOut) throw new BenchError(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs / 1000} s; stderr: ${stderr.slice(-2000)}`)
    let peakRssKb = sampledHwmKb
    let cpuMs: number | undefined
    if (resourceFile && existsSync(resourceFile)) {
      // The last line: GNU time puts a note about a signal or exit status before it.
      const [rssKb, userSeconds, systemSeconds] = (readFileSync(resourceFile, 'utf8').trim().split('\n').at(-1) ?? '').split(' ').map(Number)
      if (rssKb > 0) peakRssKb = rssKb
      if (Number.isFinite(userSeconds) && Number.isFinite(systemSeconds)) cpuMs = (userSeconds + systemSeconds) * 1000
    }
    return {code, stdout, stderr, wallMs, peakRssKb, cpuMs}
  } finally {
    clearTimeout(timer)
    clearInterval(sampler)
    if (typeof stdinFd === 'number') closeSync(stdinFd)
    if (resourceFile) rmSync(resourceFile, {force: true})
  }
}

function readVmHwmKb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

export type ServiceName = 'kafka' | 'redis' | 'clickhouse'

/** The program each service's pid must run, as scripts/services.d/common.sh `service_pid` checks it. */
const SERVICE_PROGRAMS: Record<ServiceName, string> = {kafka: 'kafka.Kafka', redis: 'redis-server', clickhouse: 'clickhouse'}

/** Where scripts/services keeps pid files: IPC_STATE_DIR, else `<repo>/.ipc-services`. */
export function servicesStateDir(): string {
  return process.env.IPC_STATE_DIR || join(REPO_ROOT, '.ipc-services')
}

/** Pid of a local service from its pid file, if that process still runs the service's program. */
export function servicePid(name: ServiceName): number | undefined {
  try {
    const pid = Number(readFileSync(join(servicesStateDir(), `${name}.pid`), 'utf8').replaceAll(/\D/g, ''))
    if (!(pid > 0)) return undefined
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(SERVICE_PROGRAMS[name]) ? pid : undefined
  } catch {
    return undefined
  }
}

let clockTicks: Promise<number> | undefined

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`, usually 100). */
function clockTicksPerSecond(): Promise<number> {
  clockTicks ??= run('getconf', ['CLK_TCK']).then(({stdout}) => {
    const ticks = Number(stdout.trim())
    if (!(ticks > 0)) throw new BenchError(`getconf CLK_TCK printed "${stdout.trim()}"`)
    return ticks
  })
  return clockTicks
}

/** User + system CPU time (ms) a running process has used so far, every thread included. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  const ticks = await clockTicksPerSecond()
  try {
    // Fields after the command name (which may hold spaces and parentheses): state is the first, utime the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks
  } catch {
    return undefined
  }
}

/** Resident set size (kB) of a running process now. */
export function readVmRssKb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Starts counting the CPU time the named local services use. The returned function stops and gives
 * their total (ms), or undefined when a service has no pid file (or its process went away). All of a
 * service's work counts: background work (merges, log flushes) and any other client's load too.
 */
export async function measureServiceCpu(names: readonly ServiceName[]): Promise<() => Promise<number | undefined>> {
  const pids = names.map((name) => servicePid(name))
  const total = async (): Promise<number | undefined> => {
    let sum = 0
    for (const pid of pids) {
      const cpuMs = pid === undefined ? undefined : await processCpuMs(pid)
      if (cpuMs === undefined) return undefined
      sum += cpuMs
    }
    return sum
  }
  const before = await total()
  return async () => {
    const after = await total()
    return before === undefined || after === undefined ? undefined : after - before
  }
}

/** CPU time (ms per second) each named service spends over `ms` while this process sends it nothing. */
export async function idleServiceCpu(names: readonly ServiceName[], ms = 2000): Promise<Partial<Record<ServiceName, number>>> {
  const stops = await Promise.all(names.map((name) => measureServiceCpu([name])))
  await sleep(ms)
  const used = await Promise.all(stops.map((stop) => stop()))
  const perSecond = (cpuMs: number | undefined) => (cpuMs === undefined ? undefined : (cpuMs * 1000) / ms)
  return Object.fromEntries(names.map((name, index) => [name, perSecond(used[index])]))
}

/** Runs `node bin/run.js <args>` (the built CLI) and parses its `--json` output. */
export async function runIpcJson<T>(args: readonly string[], options: ChildOptions): Promise<{json: T; child: ChildResult}> {
  const child = await runChild(process.execPath, ['bin/run.js', ...args], options)
  if (child.code !== 0) throw new BenchError(`ipc ${args.join(' ')} exited with ${child.code}: ${child.stderr.trim().slice(-2000)}`)
  try {
    return {json: JSON.parse(child.stdout) as T, child}
  } catch {
    throw new BenchError(`ipc ${args.join(' ')} printed no JSON: ${child.stdout.slice(0, 500)}`)
  }
}

/** Writes a data set with `ipc produce`: `events` events of `devices` devices, sent `batch` at a time. */
export async function produceEvents(
  topic: string,
  set: {events: number; devices: number; batch: number; seed: number},
  timeoutMs = 300_000,
): Promise<{messagesSent: number; distinctDevices: number}> {
  const args = ['produce', '--topic', topic, '--num-devices', String(set.devices), '--num-messages', String(set.events)]
  const {json} = await runIpcJson<{messagesSent: number; distinctDevices: number}>(
    [...args, '--pause-ms', '0', '--batch', String(set.batch), '--seed', String(set.seed), '--json'],
    {timeoutMs},
  )
  if (json.messagesSent !== set.events) throw new BenchError(`ipc produce sent ${json.messagesSent} events, expected ${set.events}`)
  return json
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** Median of the values that were measured; undefined when none was. */
export function medianOf(values: ReadonlyArray<number | undefined>): number | undefined {
  const measured = values.filter((value): value is number => value !== undefined && Number.isFinite(value))
  return measured.length === 0 ? undefined : median(measured)
}

/** Nearest-rank percentile of already sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

export function verdict(pass: boolean): 'PASS' | 'MISS' {
  return pass ? 'PASS' : 'MISS'
}

/** `0.84×`, `31×`, `0.0047×` */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-'
  if (ratio >= 10) return `${ratio.toFixed(0)}×`
  if (ratio >= 0.1) return `${ratio.toFixed(2)}×`
  return `${ratio.toPrecision(2)}×`
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  return ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0)
}

export function formatMicros(micros: number | undefined): string {
  return micros === undefined ? '-' : micros.toFixed(1)
}

/** CPU milliseconds as microseconds per event; undefined when not measured. */
export function microsPerEvent(cpuMs: number | undefined, events: number): number | undefined {
  return cpuMs === undefined ? undefined : (cpuMs * 1000) / events
}

export function formatMb(kb: number | undefined): string {
  return kb === undefined ? '-' : `${(kb / 1024).toFixed(0)} MB`
}

/** Progress for the person running the benchmark, on stderr (stdout carries the tables). */
export function progress(line: string): void {
  process.stderr.write(`  ${line}\n`)
}

/** Writes bench/results/<name>.json with the machine context every result needs beside it. */
export function writeResults(name: string, results: Record<string, unknown>): void {
  mkdirSync(RESULTS_DIR, {recursive: true})
  const file = join(RESULTS_DIR, `${name}.json`)
  const report = {benchmark: name, date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg(), ...results}
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`results written to ${relative(process.cwd(), file) || file}`)
}

/** Positive integer from an environment variable, or the default. */
export function envInteger(name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0) throw new BenchError(`${name} must be a positive integer, got "${text}"`)
  return value
}

/** Runs `main`, printing a failure as one line on stderr with exit code 1. */
export function runBenchmark(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${name} benchmark failed: ${errorMessage(error)}\n`)
    process.exitCode = 1
  })
}
