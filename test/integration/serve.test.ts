import {createClient as createClickHouseClient} from '@clickhouse/client'
import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import http from 'node:http'
import net from 'node:net'
import {createClient as createRedisClient} from '@redis/client'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {createBackend} from '../../src/backends/registry.js'
import {type CliResult, type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {serviceUrls, uniqueName} from '../support/services.js'

/** A client-side limit far above --backend-timeout: a request still unanswered by then is a hang. */
const HANG_LIMIT_MS = 10_000
const LISTENING = /ipc serve: listening on (http:\/\/127\.0\.0\.1:(\d+)) /

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** `count` distinct IPs (10.x.y.z). */
function deviceIps(count: number): string[] {
  return Array.from({length: count}, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
}

function request(baseUrl: string, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), {method, agent: false, timeout: HANG_LIMIT_MS}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${HANG_LIMIT_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function json(baseUrl: string, path: string): Promise<{status: number; body: Record<string, unknown>}> {
  const answer = await request(baseUrl, path)
  expect(answer.headers['content-type'], `${path}: ${answer.body}`).to.match(/^application\/json/)
  return {status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown>}
}

/** Polls `path` until it answers `status`, returning that answer's JSON body. */
function untilStatus(baseUrl: string, path: string, status: number, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return waitFor(
    `${path} to answer ${status}`,
    async () => {
      const answer = await json(baseUrl, path)
      return answer.status === status ? answer.body : undefined
    },
    timeoutMs,
  )
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** A running `ipc serve`, with the address it printed. */
class ServeProcess {
  private constructor(
    readonly cli: RunningCli,
    readonly url: string,
    readonly port: number,
  ) {}

  static async start(args: readonly string[]): Promise<ServeProcess> {
    const cli = startIpc(['serve', '--port', '0', '--host', '127.0.0.1', ...args])
    let exited: CliResult | undefined
    void cli.done.then((result) => (exited = result))
    const match = await waitFor('ipc serve to print its address', () => {
      if (exited) throw new Error(`ipc serve exited with ${exited.code}: ${exited.stderr}`)
      return LISTENING.exec(cli.stderr()) ?? undefined
    })
    return new ServeProcess(cli, match[1], Number(match[2]))
  }

  async stop(): Promise<CliResult> {
    if (this.cli.child.exitCode === null && this.cli.child.signalCode === null) this.cli.child.kill('SIGTERM')
    return this.cli.done
  }
}

/** A private redis-server on its own port, so a test can stop, freeze and restart it. */
class PrivateRedis {
  private process: ChildProcess | undefined

  constructor(
    readonly port: number,
    readonly password: string,
  ) {}

  get url(): string {
    return `redis://:${this.password}@127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', this.password],
      {
        stdio: 'ignore',
      },
    )
    this.process = child
    await waitFor(`redis-server on port ${this.port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`)
      return (await portAcceptsConnections(this.port)) || undefined
    })
  }

  signal(signal: NodeJS.Signals): void {
    this.process?.kill(signal)
  }

  async kill(): Promise<void> {
    const child = this.process
    this.process = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  async pfadd(key: string, ips: string[]): Promise<number> {
    const client = createRedisClient({url: this.url})
    await client.connect()
    try {
      await client.pfAdd(key, ips)
      return await client.pfCount(key)
    } finally {
      await client.close()
    }
  }
}

describe('ipc serve against the real services', function () {
  this.timeout(120_000)

  describe('redis backend', () => {
    const key = uniqueName('ipc:test:serve')
    let redisUrl: string
    let expected: number
    let serve: ServeProcess

    before(async () => {
      redisUrl = serviceUrls().redisUrl
      const client = createRedisClient({url: redisUrl})
      await client.connect()
      try {
        const ips = deviceIps(592)
        await client.pfAdd(key, [...ips, ...ips])
        expected = await client.pfCount(key)
      } finally {
        await client.close()
      }
      serve = await ServeProcess.start(['--backend', 'redis', '--redis-url', redisUrl, '--redis-key', key, '--cache-ms', '0'])
    })

    after(async () => {
      await serve?.stop()
      const client = createRedisClient({url: redisUrl})
      await client.connect()
      await client.del(key)
      await client.close()
    })

    it('prints where it listens and which backend it serves', () => {
      expect(serve.cli.stderr()).to.contain(`ipc serve: listening on ${serve.url} (backend redis redis://`)
    })

    it('answers GET /unique_ip_count with the HyperLogLog count, as the original API did', async () => {
      const answer = await json(serve.url, '/unique_ip_count')
      expect(answer.status).to.equal(200)
      expect(answer.body).to.deep.equal({unique_device_ip_count: expected})
      expect(expected).to.be.within(580, 604)
    })

    it('answers HEAD /unique_ip_count without a body', async () => {
      const answer = await request(serve.url, '/unique_ip_count', 'HEAD')
      expect(answer.status).to.equal(200)
      expect(answer.body).to.equal('')
      expect(answer.headers['content-type']).to.match(/^application\/json/)
    })

    it('answers GET /healthz with ok', async () => {
      const answer = await json(serve.url, '/healthz')
      expect(answer.status).to.equal(200)
      expect(answer.body).to.include({status: 'ok', backend: 'redis', exact: false})
    })

    it('serves /metrics in the Prometheus text format with the count and the requests so far', async () => {
      const answer = await request(serve.url, '/metrics')
      expect(answer.status).to.equal(200)
      expect(answer.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/)
      const lines = answer.body.split('\n')
      expect(lines).to.include(`ipc_unique_device_ip_count ${expected}`)
      expect(lines).to.include('ipc_backend_up 1')
      expect(lines).to.include('ipc_http_requests_total{route="/unique_ip_count",status="200"} 2')
      expect(lines.some((line) => line.startsWith('ipc_http_request_duration_seconds_bucket{le="+Inf",route="/healthz"} 1'))).to.equal(true)
    })

    it('answers an unknown path with 404 JSON and a wrong method with 405 JSON and Allow', async () => {
      const missing = await json(serve.url, '/unique_device_count')
      expect(missing.status).to.equal(404)
      expect(missing.body.error).to.be.a('string')
      const wrongMethod = await request(serve.url, '/unique_ip_count', 'DELETE')
      expect(wrongMethod.status).to.equal(405)
      expect(wrongMethod.headers.allow).to.equal('GET, HEAD')
      expect(JSON.parse(wrongMethod.body).error).to.contain('DELETE')
    })

    it('exits 0 on SIGTERM and closes its port', async () => {
      const result = await serve.stop()
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stderr).to.contain('ipc serve: SIGTERM received')
      expect(await portAcceptsConnections(serve.port)).to.equal(false)
    })
  })

  describe('redis outage and recovery (private redis-server)', () => {
    const key = uniqueName('ipc:test:serve')
    const password = uniqueName('pw')
    let redis: PrivateRedis
    let serve: ServeProcess
    let expected: number

    before(async () => {
      redis = new PrivateRedis(await freePort(), password)
      serve = await ServeProcess.start(['--backend', 'redis', '--redis-url', redis.url, '--redis-key', key, '--backend-timeout', '500ms', '--cache-ms', '0'])
    })

    after(async () => {
      await serve?.stop()
      await redis?.kill()
    })

    it('starts while Redis is down and answers 503 JSON without the password', async () => {
      for (const path of ['/unique_ip_count', '/healthz']) {
        const answer = await request(serve.url, path)
        expect(answer.status, path).to.equal(503)
        expect(answer.body).not.to.contain(password)
        const body = JSON.parse(answer.body)
        expect(body).to.include({backend: 'redis', location: `redis://127.0.0.1:${redis.port}`})
        expect(body.error).to.be.a('string').and.not.equal('')
      }
      expect(serve.cli.stderr()).not.to.contain(password)
    })

    it('answers 200 once Redis is up', async () => {
      await redis.start()
      expected = await redis.pfadd(key, deviceIps(50))
      expect(await untilStatus(serve.url, '/unique_ip_count', 200)).to.deep.equal({unique_device_ip_count: expected})
    })

    it('answers 503 within the backend timeout, not hanging, while Redis is frozen', async () => {
      redis.signal('SIGSTOP')
      try {
        const answer = await json(serve.url, '/unique_ip_count')
        expect(answer.status).to.equal(503)
        expect(answer.body.error).to.contain('within 500 ms')
        const health = await json(serve.url, '/healthz')
        expect(health.status).to.equal(503)
        expect(health.body.status).to.equal('unavailable')
      } finally {
        redis.signal('SIGCONT')
      }
      expect(await untilStatus(serve.url, '/unique_ip_count', 200)).to.deep.equal({unique_device_ip_count: expected})
    })

    it('answers 503 JSON when Redis is killed, and 200 again after it restarts on the same port', async () => {
      await redis.kill()
      const down = await json(serve.url, '/unique_ip_count')
      expect(down.status).to.equal(503)
      expect(down.body).to.include({backend: 'redis', location: `redis://127.0.0.1:${redis.port}`})
      expect(JSON.stringify(down.body)).not.to.contain(password)

      await redis.start()
      const recounted = await redis.pfadd(key, deviceIps(80))
      expect(await untilStatus(serve.url, '/unique_ip_count', 200)).to.deep.equal({unique_device_ip_count: recounted})
      expect((await json(serve.url, '/healthz')).status).to.equal(200)
    })

    it('counted the failures in /metrics and logged the outages without the password', async () => {
      const lines = (await request(serve.url, '/metrics')).body.split('\n')
      expect(lines).to.include('ipc_backend_up 1')
      expect(lines.some((line) => /^ipc_http_requests_total\{route="\/unique_ip_count",status="503"\} [1-9]/.test(line))).to.equal(true)
      const timeouts = lines.find((line) => line.startsWith('ipc_backend_errors_total{operation="count",reason="timeout"}'))
      expect(timeouts).to.match(/ [1-9]\d*$/)
      const stderr = serve.cli.stderr()
      expect(stderr).to.contain('is unavailable')
      expect(stderr).to.contain('is available again')
      expect(stderr).not.to.contain(password)
    })
  })

  describe('clickhouse backend', () => {
    const database = uniqueName('ipc_test_serve')
    const distinct = 592
    let clickhouseUrl: string
    let serve: ServeProcess

    const clickhouseCredentials = (): {clickhouseUser: string; clickhousePassword: string} => ({
      clickhouseUser: process.env.CLICKHOUSE_USER ?? 'default',
      clickhousePassword: process.env.CLICKHOUSE_PASSWORD ?? '',
    })

    before(async () => {
      clickhouseUrl = serviceUrls().clickhouseUrl
      const backend = await createBackend('clickhouse', {
        redisUrl: 'redis://127.0.0.1:1',
        redisKey: 'unused',
        clickhouseUrl,
        clickhouseDatabase: database,
        ...clickhouseCredentials(),
      })
      await backend.connect()
      const ips = deviceIps(distinct)
      const events: DeviceEvent[] = [...ips, ...ips.slice(0, 100)].map((deviceIp, i) => ({
        timestampMs: Date.UTC(2021, 11, 3, 16, 15, 30, i),
        deviceIp,
        errorCode: i % 3,
      }))
      await backend.add(events)
      await backend.flush()
      await backend.close()
      serve = await ServeProcess.start(['--backend', 'clickhouse', '--clickhouse-url', clickhouseUrl, '--clickhouse-database', database])
    })

    after(async () => {
      await serve?.stop()
      const {clickhouseUser, clickhousePassword} = clickhouseCredentials()
      const client = createClickHouseClient({url: clickhouseUrl, username: clickhouseUser, password: clickhousePassword})
      await client.command({query: `DROP DATABASE IF EXISTS ${database}`})
      await client.close()
    })

    it('answers GET /unique_ip_count with the exact count', async () => {
      const answer = await json(serve.url, '/unique_ip_count')
      expect(answer.status).to.equal(200)
      expect(answer.body).to.deep.equal({unique_device_ip_count: distinct})
    })

    it('serves the count with a read-only ClickHouse user, which may not create anything', async () => {
      const reader = await ServeProcess.start([
        '--backend',
        'clickhouse',
        '--clickhouse-url',
        clickhouseUrl,
        '--clickhouse-database',
        database,
        '--clickhouse-user',
        'ipc_reader',
      ])
      try {
        const answer = await json(reader.url, '/unique_ip_count')
        expect(answer.status, JSON.stringify(answer.body)).to.equal(200)
        expect(answer.body).to.deep.equal({unique_device_ip_count: distinct})
      } finally {
        await reader.stop()
      }
    })

    it('answers /healthz ok and exposes the count in /metrics', async () => {
      const health = await json(serve.url, '/healthz')
      expect(health.status).to.equal(200)
      expect(health.body).to.include({status: 'ok', backend: 'clickhouse', exact: true})
      const metrics = await request(serve.url, '/metrics')
      expect(metrics.body.split('\n')).to.include(`ipc_unique_device_ip_count ${distinct}`)
    })

    it('exits 0 on SIGTERM and closes its port', async () => {
      const result = await serve.stop()
      expect(result.code, result.stderr).to.equal(0)
      expect(await portAcceptsConnections(serve.port)).to.equal(false)
    })
  })

  describe('clickhouse unreachable', () => {
    const password = uniqueName('pw')
    let serve: ServeProcess
    let location: string

    before(async () => {
      const port = await freePort()
      location = `http://127.0.0.1:${port}`
      serve = await ServeProcess.start(['--backend', 'clickhouse', '--clickhouse-url', location, '--clickhouse-password', password, '--backend-timeout', '1s'])
    })

    after(async () => {
      await serve?.stop()
    })

    it('answers 503 JSON naming the backend and location, without the password', async () => {
      for (const path of ['/unique_ip_count', '/healthz']) {
        const answer = await request(serve.url, path)
        expect(answer.status, path).to.equal(503)
        expect(answer.body).not.to.contain(password)
        expect(JSON.parse(answer.body)).to.include({backend: 'clickhouse'})
        expect(JSON.parse(answer.body).location).to.match(new RegExp(`^${location}/?$`))
      }
      expect(serve.cli.stderr()).not.to.contain(password)
    })
  })
})
