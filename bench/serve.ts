/**
 * Load benchmark of `ipc serve` on loopback: a fixed number of GET /unique_ip_count requests over a
 * fixed number of keep-alive connections, against the redis backend, next to the same load on a bare
 * node `http` server that returns a constant JSON body (the ceiling on this machine).
 *
 *   node dist/bench/serve.js [--requests 10000] [--concurrency 50] [--rounds 3]
 *
 * Redis: REDIS_URL from the environment, or a private redis-server started and stopped here.
 * Prints a table and PASS/MISS against the target (no errors, `ipc serve` at least half the bare
 * server's requests/s), and writes bench/results/serve.json. Exits 1 if any request failed.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdir, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import {dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import {createClient} from '@redis/client'
import {formatInt, renderTable} from '../src/cli/output.js'
import {errorMessage} from '../src/util/errors.js'
import {sleep} from '../src/util/async.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS_FILE = `${REPO_ROOT}bench/results/serve.json`
const WARMUP_REQUESTS = 500
/** Each scenario stops by itself after this long, whatever is left. */
const SCENARIO_DEADLINE_MS = 120_000
const REQUEST_TIMEOUT_MS = 10_000
/** Target: no failed request, and `ipc serve` (default cache) at least this share of the bare server's rate. */
const TARGET_RATIO_TO_BARE = 0.5
const LISTENING = /listening on http:\/\/127\.0\.0\.1:(\d+)/

const BARE_SERVER = `
import http from 'node:http'
const body = Buffer.from(JSON.stringify({unique_device_ip_count: 592}) + '\\n')
const server = http.createServer((request, response) => {
  request.resume()
  response.writeHead(200, {'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store'})
  response.end(body)
})
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on http://127.0.0.1:' + server.address().port + '\\n'))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
`

interface Scenario {
  name: string
  command: string[]
}

interface ScenarioResult {
  name: string
  /** Measured requests, all rounds together (warm-up not included). */
  requests: number
  errors: number
  /** Requests per second of each round. */
  roundRequestsPerSecond: number[]
  /** Median over the rounds. */
  requestsPerSecond: number
  /** Latency percentiles over every measured request. */
  p50Ms: number
  p99Ms: number
  maxMs: number
  firstError?: string
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`)
  if (index === -1) return fallback
  const value = Number(process.argv[index + 1])
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer, got "${process.argv[index + 1]}"`)
  return value
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => resolve(socket.destroy() && true))
    socket.once('error', () => resolve(false))
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/** Starts a server process and waits for the port it prints on stderr. */
async function startServer(command: string[]): Promise<{child: ChildProcess; port: number}> {
  const child = spawn(process.execPath, command, {cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const deadline = Date.now() + 30_000
  for (;;) {
    const match = LISTENING.exec(stderr)
    if (match) return {child, port: Number(match[1])}
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`)
    if (Date.now() > deadline) {
      await stopChild(child)
      throw new Error(`server did not print its address within 30 s: ${stderr}`)
    }
    await sleep(20)
  }
}

/** One parsed response from a keep-alive connection. */
interface RawResponse {
  status: number
  body: Buffer
}

/**
 * A keep-alive HTTP/1.1 connection sending one GET at a time, with a minimal response reader
 * (status line and Content-Length, which every server measured here sends). Node's own http client
 * costs the load generator 2–3× more CPU than the servers it measures, which would cap every
 * scenario at the client's speed and hide the difference between them.
 */
class RawConnection {
  private readonly socket: net.Socket
  private buffered: Buffer = Buffer.alloc(0)
  private waiting: {resolve: (response: RawResponse) => void; reject: (error: Error) => void} | undefined
  private failure: Error | undefined

  private constructor(
    socket: net.Socket,
    private readonly request: Buffer,
  ) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    socket.on('error', (error) => this.fail(error))
    socket.on('close', () => this.fail(new Error('connection closed by the server')))
  }

  static async open(port: number, path: string): Promise<RawConnection> {
    const socket = net.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    return new RawConnection(socket, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`))
  }

  get(): Promise<RawResponse> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS)
      this.waiting = {
        resolve: (response) => {
          clearTimeout(timer)
          resolve(response)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      }
      this.socket.write(this.request)
    })
  }

  close(): void {
    this.failure ??= new Error('connection closed')
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    const headerEnd = this.buffered.indexOf('\r\n\r\n')
    if (headerEnd === -1) return
    const head = this.buffered.subarray(0, headerEnd).toString('latin1')
    const status = /^HTTP\/1\.1 (\d{3})/.exec(head)
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (!status || !length) return this.fail(new Error(`unreadable response head: ${JSON.stringify(head.slice(0, 200))}`))
    const bodyEnd = headerEnd + 4 + Number(length[1])
    if (this.buffered.length < bodyEnd) return
    const body = this.buffered.subarray(headerEnd + 4, bodyEnd)
    this.buffered = this.buffered.subarray(bodyEnd)
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.resolve({status: Number(status[1]), body})
  }

  private fail(error: Error): void {
    this.failure ??= error
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.reject(error)
    this.socket.destroy()
  }
}

/** Sends `total` GET /unique_ip_count over `concurrency` keep-alive connections; latencies in ms. */
async function load(port: number, total: number, concurrency: number): Promise<{latencies: number[]; errors: number; seconds: number; firstError?: string}> {
  const connections = await Promise.all(Array.from({length: concurrency}, () => RawConnection.open(port, '/unique_ip_count')))
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  let next = 0
  const deadline = Date.now() + SCENARIO_DEADLINE_MS
  const started = process.hrtime.bigint()
  const worker = async (connection: RawConnection): Promise<void> => {
    while (next < total && Date.now() < deadline) {
      next++
      const sent = process.hrtime.bigint()
      try {
        const response = await connection.get()
        if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.toString('utf8').trim()}`)
        latencies.push(Number(process.hrtime.bigint() - sent) / 1e6)
      } catch (error) {
        errors++
        firstError ??= errorMessage(error)
        if (!(error instanceof Error && error.message.startsWith('status'))) return
      }
    }
  }
  await Promise.all(connections.map(worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  for (const connection of connections) connection.close()
  const unsent = total - latencies.length - errors
  if (unsent > 0) {
    errors += unsent
    firstError ??= `${unsent} requests unsent`
  }
  return {latencies, errors, seconds, firstError}
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** REDIS_URL, or a private redis-server on a free port (stopped by the returned function). */
async function redisForBench(): Promise<{url: string; stop: () => Promise<void>}> {
  if (process.env.REDIS_URL) return {url: process.env.REDIS_URL, stop: async () => {}}
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {stdio: 'ignore'})
  const spawnFailed = once(child, 'error').then(([error]) => {
    throw new Error(`cannot start redis-server (set REDIS_URL or install redis-server): ${(error as Error).message}`)
  })
  const ready = (async () => {
    for (let attempt = 0; attempt < 250; attempt++) {
      if (await connects(port)) return
      await sleep(20)
    }
    throw new Error(`redis-server on port ${port} did not accept connections within 5 s`)
  })()
  try {
    await Promise.race([ready, spawnFailed])
  } catch (error) {
    await stopChild(child)
    throw error
  }
  return {url: `redis://127.0.0.1:${port}`, stop: () => stopChild(child)}
}

function formatMs(ms: number): string {
  return Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
}

async function main(): Promise<void> {
  const total = argument('requests', 10_000)
  const concurrency = argument('concurrency', 50)
  const rounds = argument('rounds', 3)
  const redis = await redisForBench()
  const key = `ipc:bench:serve:${process.pid}`
  const client = createClient({url: redis.url})
  const servers: ChildProcess[] = []
  try {
    await client.connect()
    await client.pfAdd(
      key,
      Array.from({length: 592}, (_, i) => `10.0.${i >> 8}.${i & 255}`),
    )
    const expectedBody = JSON.stringify({unique_device_ip_count: await client.pfCount(key)})
    const serve = ['bin/run.js', 'serve', '--port', '0', '--host', '127.0.0.1', '--backend', 'redis', '--redis-url', redis.url, '--redis-key', key]
    const scenarios: Scenario[] = [
      {name: 'bare node http, constant body', command: ['--input-type=module', '-e', BARE_SERVER]},
      {name: 'ipc serve, redis, --cache 1s', command: [...serve, '--cache', '1s']},
      {name: 'ipc serve, redis, --cache 0', command: [...serve, '--cache', '0']},
    ]
    process.stderr.write(
      `serve benchmark: ${rounds} rounds of ${formatInt(total)} requests per server, ${concurrency} keep-alive connections, redis ${redis.url}\n`,
    )
    const ports: number[] = []
    for (const scenario of scenarios) {
      const {child, port} = await startServer(scenario.command)
      servers.push(child)
      ports.push(port)
      const probe = await RawConnection.open(port, '/unique_ip_count')
      const answer = await probe.get().finally(() => probe.close())
      const body = answer.body.toString('utf8').trim()
      if (scenario.command[0] === 'bin/run.js' && body !== expectedBody)
        throw new Error(`${scenario.name} answered ${answer.status} ${body}, expected ${expectedBody}`)
      await load(port, Math.min(WARMUP_REQUESTS, total), concurrency)
    }

    // Rounds alternate between the servers so a busy moment on the machine does not favour one.
    const measured = scenarios.map(() => ({latencies: [] as number[], errors: 0, rates: [] as number[], firstError: undefined as string | undefined}))
    for (let round = 1; round <= rounds; round++) {
      for (const [index, scenario] of scenarios.entries()) {
        process.stderr.write(`  round ${round}/${rounds}: ${scenario.name}\n`)
        const result = await load(ports[index], total, concurrency)
        const into = measured[index]
        for (const latency of result.latencies) into.latencies.push(latency)
        into.errors += result.errors
        into.rates.push(result.latencies.length / result.seconds)
        into.firstError ??= result.firstError
      }
    }

    const results: ScenarioResult[] = scenarios.map((scenario, index) => {
      const {latencies, errors, rates, firstError} = measured[index]
      latencies.sort((a, b) => a - b)
      return {
        name: scenario.name,
        requests: total * rounds,
        errors,
        roundRequestsPerSecond: rates,
        requestsPerSecond: median(rates),
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies.at(-1) ?? Number.NaN,
        firstError,
      }
    })
    const bare = results[0].requestsPerSecond
    // Each round's pair, then the median: steadier than a ratio of medians when the load generator
    // and the servers share two busy cores (a round's rates move by 2x).
    const ratios = results.map((result) => median(result.roundRequestsPerSecond.map((rate, round) => rate / results[0].roundRequestsPerSecond[round])))
    const rows = results.map((result, index) => [
      result.name,
      formatInt(result.requestsPerSecond),
      formatMs(result.p50Ms),
      formatMs(result.p99Ms),
      formatMs(result.maxMs),
      formatInt(result.errors),
      `${(ratios[index] * 100).toFixed(0)}%`,
    ])
    process.stdout.write(`${renderTable(['server', 'requests/s (median)', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'of bare'], rows)}\n`)
    const served = results[1]
    const pass = results.every((result) => result.errors === 0) && ratios[1] >= TARGET_RATIO_TO_BARE
    process.stdout.write(
      `${pass ? 'PASS' : 'MISS'}: target 0 errors and ipc serve >= ${TARGET_RATIO_TO_BARE * 100}% of bare; ` +
        `${formatInt(served.requestsPerSecond)} vs ${formatInt(bare)} requests/s (median of the rounds' ratios ${(ratios[1] * 100).toFixed(0)}%), ` +
        `${formatInt(results.reduce((sum, result) => sum + result.errors, 0))} errors\n`,
    )
    const report = {
      benchmark: 'serve',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadavg: os.loadavg(),
      requestsPerRound: total,
      rounds,
      concurrency,
      warmupRequests: WARMUP_REQUESTS,
      targetRatioToBare: TARGET_RATIO_TO_BARE,
      pass,
      results: results.map((result, index) => ({...result, ratioToBare: ratios[index]})),
    }
    await mkdir(dirname(RESULTS_FILE), {recursive: true})
    await writeFile(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`)
    process.stderr.write(`wrote ${RESULTS_FILE}\n`)
    const failed = results.filter((result) => result.errors > 0)
    for (const result of failed) process.stderr.write(`error: ${result.name}: ${result.errors} failed requests (first: ${result.firstError})\n`)
    if (failed.length > 0) process.exitCode = 1
  } finally {
    await Promise.all(servers.map((child) => stopChild(child)))
    if (client.isOpen) {
      await client.del(key)
      await client.close()
    }
    await redis.stop()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`serve benchmark failed: ${errorMessage(error)}\n`)
  process.exitCode = 1
})
