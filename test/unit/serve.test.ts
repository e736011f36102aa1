import {expect} from 'chai'
import http from 'node:http'
import {EventEmitter} from 'node:events'
import net from 'node:net'
import {BackendError, type AddReceipt, type BackendEvents, type CountBackend} from '../../src/backends/backend.js'
import {MemoryBackend} from '../../src/backends/memory.js'
import type {Metric} from 'prom-client'
import {BackendTimeoutError, CountServer, createCountServer, ListenError, type CountServerOptions} from '../../src/http/count-server.js'
import {withTimeout} from '../../src/util/async.js'
import {until} from '../support/wait.js'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

function request(url: string, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), {method, agent: false}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A metric's current value for the given labels (0 before it has a series). */
async function valueOf(metric: Metric, labels: Record<string, string> = {}): Promise<number> {
  const {values} = await metric.get()
  const match = values.find((value) => Object.entries(labels).every(([name, label]) => value.labels[name] === label))
  return match?.value ?? 0
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return {promise, resolve}
}

type Behaviour = 'answer' | 'reject' | 'hang' | 'wait' | 'throw'

/** What every ScriptedBackend instance of one test does, and what was asked of them. */
class Script {
  connect: Behaviour = 'answer'
  count: Behaviour = 'answer'
  close: Behaviour = 'answer'
  value = 7
  message = 'connection refused'
  created = 0
  connectCalls = 0
  countCalls = 0
  closeCalls = 0
  /** Count calls in `wait` mode resolve with the value given here. */
  pending: Deferred<number> = deferred()
}

/** A CountBackend that does what its script says: answers, rejects, throws, hangs or waits. */
class ScriptedBackend extends EventEmitter<BackendEvents> implements CountBackend {
  readonly name = 'scripted'
  readonly exact = true
  readonly location = 'scripted://127.0.0.1:1'
  readonly unwrittenEvents = 0

  constructor(private readonly script: Script) {
    super()
  }

  connect(): Promise<void> {
    this.script.connectCalls++
    return this.act(this.script.connect, undefined)
  }

  async add(): Promise<AddReceipt> {
    return {durable: Promise.resolve()}
  }

  async flush(): Promise<void> {}

  count(): Promise<number> {
    this.script.countCalls++
    if (this.script.count === 'wait') return this.script.pending.promise
    return this.act(this.script.count, this.script.value)
  }

  close(): Promise<void> {
    this.script.closeCalls++
    return this.act(this.script.close, undefined)
  }

  private act<T>(behaviour: Behaviour, value: T): Promise<T> {
    switch (behaviour) {
      case 'answer':
        return Promise.resolve(value)
      case 'reject':
        return Promise.reject(new BackendError(this.script.message, this.name, this.location))
      case 'throw':
        throw new TypeError(this.script.message)
      default:
        return new Promise<T>(() => {})
    }
  }
}

describe('serve: count server', () => {
  const servers: CountServer[] = []

  async function start(options: Partial<CountServerOptions> & Pick<CountServerOptions, 'createBackend'>): Promise<CountServer> {
    const server = await createCountServer({cacheMs: 0, requestTimeoutMs: 1000, ...options})
    servers.push(server)
    await server.listen(0, '127.0.0.1')
    return server
  }

  function scripted(script: Script): () => Promise<CountBackend> {
    return async () => {
      script.created++
      return new ScriptedBackend(script)
    }
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()))
  })

  describe('routes, against the memory backend', () => {
    let server: CountServer

    beforeEach(async () => {
      const backend = new MemoryBackend()
      await backend.add([
        {timestampMs: 0, deviceIp: '10.0.0.1', errorCode: 0},
        {timestampMs: 1, deviceIp: '10.0.0.2', errorCode: 0},
        {timestampMs: 2, deviceIp: '10.0.0.1', errorCode: -1},
      ])
      server = await start({createBackend: async () => backend})
    })

    it('answers GET /unique_ip_count with the original field name, as JSON', async () => {
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.status).to.equal(200)
      expect(answer.headers['content-type']).to.match(/^application\/json/)
      expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 2})
    })

    it('ignores the query string', async () => {
      const answer = await request(server.url, '/unique_ip_count?pretty=1')
      expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 2})
    })

    it('answers HEAD with the headers of GET and no body', async () => {
      const get = await request(server.url, '/unique_ip_count')
      const head = await request(server.url, '/unique_ip_count', 'HEAD')
      expect(head.status).to.equal(200)
      expect(head.body).to.equal('')
      expect(head.headers['content-length']).to.equal(get.headers['content-length'])
      expect(head.headers['content-type']).to.equal(get.headers['content-type'])
    })

    it('reports health with the backend name', async () => {
      const answer = await request(server.url, '/healthz')
      expect(answer.status).to.equal(200)
      expect(JSON.parse(answer.body)).to.deep.equal({status: 'ok', backend: 'memory', location: 'memory', exact: true})
    })

    it('serves Prometheus metrics with the count, requests by route and status, and latency', async () => {
      await request(server.url, '/unique_ip_count')
      await request(server.url, '/nowhere')
      const answer = await request(server.url, '/metrics')
      expect(answer.status).to.equal(200)
      expect(answer.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/)
      const lines = answer.body.split('\n')
      expect(lines).to.include('ipc_unique_device_ip_count 2')
      expect(lines).to.include('ipc_backend_up 1')
      expect(lines).to.include('ipc_http_requests_total{route="/unique_ip_count",status="200"} 1')
      expect(lines).to.include('ipc_http_requests_total{route="other",status="404"} 1')
      expect(lines).to.include('ipc_http_request_duration_seconds_count{route="/unique_ip_count"} 1')
      expect(lines).to.include('ipc_http_request_duration_seconds_bucket{le="+Inf",route="/unique_ip_count"} 1')
      expect(lines).to.include('# TYPE ipc_count_cache_hits_total counter')
      expect(lines).to.include('ipc_backend_errors_total{operation="count",reason="timeout"} 0')
      expect(lines.some((line) => /^process_resident_memory_bytes \d+$/.test(line))).to.equal(true)
      expect(lines.some((line) => line.startsWith('nodejs_eventloop_lag_seconds '))).to.equal(true)
    })

    it('answers unknown paths with 404 JSON', async () => {
      const answer = await request(server.url, '/unique_ip_counts')
      expect(answer.status).to.equal(404)
      expect(answer.headers['content-type']).to.match(/^application\/json/)
      expect(JSON.parse(answer.body).error).to.equal('no such path: /unique_ip_counts')
    })

    it('answers other methods with 405 JSON and an Allow header', async () => {
      for (const path of ['/unique_ip_count', '/healthz', '/metrics']) {
        const answer = await request(server.url, path, 'POST')
        expect(answer.status, path).to.equal(405)
        expect(answer.headers.allow).to.equal('GET, HEAD')
        expect(JSON.parse(answer.body).error).to.contain('POST')
      }
    })

    it('answers a malformed request with 400 and keeps serving', async () => {
      const {port} = new URL(server.url)
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
        let text = ''
        socket.on('data', (chunk) => (text += chunk.toString()))
        socket.on('end', () => resolve(text))
        socket.on('error', reject)
      })
      expect(reply).to.match(/^HTTP\/1\.1 400/)
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(200)
    })
  })

  describe('range queries, against the memory backend', () => {
    let server: CountServer
    const HOUR = 3_600_000

    beforeEach(async () => {
      const backend = new MemoryBackend()
      await backend.add([
        {timestampMs: 0, deviceIp: '10.0.0.1', errorCode: 0},
        {timestampMs: 1, deviceIp: '10.0.0.2', errorCode: 0},
        {timestampMs: 2, deviceIp: '10.0.0.1', errorCode: -1},
        {timestampMs: HOUR, deviceIp: '10.0.0.3', errorCode: 5},
      ])
      server = await start({createBackend: async () => backend, now: () => 2 * HOUR})
    })

    it('answers a range with the count, exactness and the query, as one JSON line', async () => {
      const answer = await request(server.url, '/unique_ip_count?until=1970-01-01T00:00:00.002Z&since=1970-01-01')
      expect(answer.status).to.equal(200)
      expect(answer.headers['content-type']).to.equal('application/json; charset=utf-8')
      expect(answer.headers['cache-control']).to.equal('no-store')
      expect(answer.body).to.equal(
        '{"unique_device_ip_count":2,"exact":true,"since":"1970-01-01T00:00:00.000Z","until":"1970-01-01T00:00:00.002Z","error_codes":[]}\n',
      )
    })

    it('counts error codes given repeated or comma-separated, with no range', async () => {
      const answer = await request(server.url, '/unique_ip_count?error_code=5&error_code=-1,5')
      expect(answer.body).to.equal('{"unique_device_ip_count":2,"exact":true,"since":null,"until":null,"error_codes":[-1,5]}\n')
    })

    it('answers by=hour with a series, relative bounds read against now', async () => {
      const answer = await request(server.url, '/unique_ip_count?since=2h&by=hour')
      expect(JSON.parse(answer.body)).to.deep.equal({
        unique_device_ip_count: 3,
        exact: true,
        since: '1970-01-01T00:00:00.000Z',
        until: '1970-01-01T02:00:00.000Z',
        error_codes: [],
        by: 'hour',
        series: [
          {bucket: '1970-01-01T00:00:00.000Z', count: 2},
          {bucket: '1970-01-01T01:00:00.000Z', count: 1},
        ],
      })
    })

    it('answers 400 JSON, without Retry-After, for an invalid or repeated parameter', async () => {
      const invalid = await request(server.url, '/unique_ip_count?since=yesterday')
      expect(invalid.status).to.equal(400)
      expect(invalid.headers['retry-after']).to.equal(undefined)
      expect(JSON.parse(invalid.body).error).to.match(/^invalid since "yesterday": /)
      const repeated = await request(server.url, '/unique_ip_count?since=1h&since=2h')
      expect(repeated.status).to.equal(400)
      expect(repeated.body).to.equal('{"error":"query parameter \\"since\\" given more than once"}\n')
      const seriesWithoutStart = await request(server.url, '/unique_ip_count?by=hour')
      expect(seriesWithoutStart.status).to.equal(400)
      expect(JSON.parse(seriesWithoutStart.body).error).to.equal('by needs since (for example since 24h by hour)')
    })

    it('answers 400 for a range on a backend that counts only the total', async () => {
      const other = await start({createBackend: scripted(new Script())})
      const answer = await request(other.url, '/unique_ip_count?since=1h')
      expect(answer.status).to.equal(400)
      expect(answer.body).to.equal('{"error":"the scripted backend cannot count time ranges or error codes"}\n')
      expect((await request(other.url, '/healthz')).status).to.equal(200)
    })

    it('answers 503 JSON with Retry-After when the backend fails a range query', async () => {
      const script = new Script()
      script.connect = 'reject'
      const other = await start({createBackend: scripted(script)})
      const answer = await request(other.url, '/unique_ip_count?since=1h')
      expect(answer.status).to.equal(503)
      expect(answer.headers['retry-after']).to.equal('1')
      expect(answer.body).to.equal('{"error":"connection refused","backend":"scripted","location":"scripted://127.0.0.1:1"}\n')
    })
  })

  describe('cache and single-flight', () => {
    it('answers a burst from one backend query while the cache is fresh', async () => {
      const script = new Script()
      const server = await start({createBackend: scripted(script), cacheMs: 60_000})
      const answers = await Promise.all(Array.from({length: 20}, () => request(server.url, '/unique_ip_count')))
      for (const answer of answers) expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 7})
      expect(script.countCalls).to.equal(1)
    })

    it('makes concurrent requests share the query in flight, even with no cache', async () => {
      const script = new Script()
      script.count = 'wait'
      const server = await start({createBackend: scripted(script), cacheMs: 0})
      const answers = Promise.all(Array.from({length: 10}, () => request(server.url, '/unique_ip_count')))
      await until('nine requests joined the query in flight', async () => (await valueOf(server.metrics.sharedQueries)) === 9)
      script.pending.resolve(42)
      for (const answer of await answers) expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 42})
      expect(script.countCalls).to.equal(1)
    })

    it('queries again once the cached count is cacheMs old', async () => {
      const script = new Script()
      let now = 1_000_000
      const server = await start({createBackend: scripted(script), cacheMs: 1000, now: () => now})
      await request(server.url, '/unique_ip_count')
      now += 999
      script.value = 8
      expect(JSON.parse((await request(server.url, '/unique_ip_count')).body).unique_device_ip_count).to.equal(7)
      expect(script.countCalls).to.equal(1)
      now += 1
      expect(JSON.parse((await request(server.url, '/unique_ip_count')).body).unique_device_ip_count).to.equal(8)
      expect(script.countCalls).to.equal(2)
      expect(await valueOf(server.metrics.cacheHits)).to.equal(1)
    })

    it('queries for every sequential request with cacheMs 0', async () => {
      const script = new Script()
      const server = await start({createBackend: scripted(script), cacheMs: 0})
      for (let i = 0; i < 3; i++) await request(server.url, '/unique_ip_count')
      expect(script.countCalls).to.equal(3)
    })

    it('remembers a failure for at most 500 ms, then asks again', async () => {
      const script = new Script()
      script.count = 'reject'
      let now = 1_000_000
      const server = await start({createBackend: scripted(script), cacheMs: 10_000, now: () => now})
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      expect(script.countCalls).to.equal(1)
      script.count = 'answer'
      now += 500
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(200)
      expect(script.countCalls).to.equal(2)
    })

    it('never remembers a failure longer than the cache', async () => {
      const script = new Script()
      script.count = 'reject'
      let now = 1_000_000
      const server = await start({createBackend: scripted(script), cacheMs: 100, now: () => now})
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      script.count = 'answer'
      now += 100
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(200)
    })
  })

  describe('backend failures', () => {
    it('answers 503 with the error, backend and location as JSON when the count fails', async () => {
      const script = new Script()
      script.count = 'reject'
      const server = await start({createBackend: scripted(script)})
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.status).to.equal(503)
      expect(answer.headers['content-type']).to.match(/^application\/json/)
      expect(JSON.parse(answer.body)).to.deep.equal({error: 'connection refused', backend: 'scripted', location: 'scripted://127.0.0.1:1'})
      const metrics = (await request(server.url, '/metrics')).body.split('\n')
      expect(metrics).to.include('ipc_backend_errors_total{operation="count",reason="error"} 1')
      expect(metrics).to.include('ipc_backend_up 0')
    })

    it('answers /healthz with 503 and a reason when the backend fails', async () => {
      const script = new Script()
      script.count = 'reject'
      const server = await start({createBackend: scripted(script)})
      const answer = await request(server.url, '/healthz')
      expect(answer.status).to.equal(503)
      expect(JSON.parse(answer.body)).to.include({status: 'unavailable', error: 'connection refused', backend: 'scripted'})
    })

    it('answers 503 instead of hanging when the backend never answers', async () => {
      const script = new Script()
      script.count = 'hang'
      const server = await start({createBackend: scripted(script), requestTimeoutMs: 50})
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.status).to.equal(503)
      expect(JSON.parse(answer.body).error).to.equal('scripted at scripted://127.0.0.1:1 did not answer count within 50 ms')
      expect(await valueOf(server.metrics.backendErrors, {operation: 'count', reason: 'timeout'})).to.equal(1)
    })

    it('answers 503 instead of hanging when connecting never finishes', async () => {
      const script = new Script()
      script.connect = 'hang'
      const server = await start({createBackend: scripted(script), requestTimeoutMs: 50})
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.status).to.equal(503)
      expect(JSON.parse(answer.body).error).to.contain('did not answer connect within 50 ms')
      expect(script.countCalls).to.equal(0)
    })

    it('survives a backend that throws instead of rejecting', async () => {
      const script = new Script()
      script.count = 'throw'
      const server = await start({createBackend: scripted(script)})
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      script.count = 'answer'
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(200)
    })

    it('treats a count that is not a non-negative integer as a failure', async () => {
      for (const value of [-1, Number.NaN, 1.5]) {
        const script = new Script()
        script.value = value
        const server = await start({createBackend: scripted(script)})
        const answer = await request(server.url, '/unique_ip_count')
        expect(answer.status, String(value)).to.equal(503)
        expect(JSON.parse(answer.body).error).to.contain('invalid count')
      }
    })

    it('never shows a configured secret in an error', async () => {
      const script = new Script()
      script.count = 'reject'
      script.message = 'WRONGPASS invalid password hunter2 for user default'
      const server = await start({createBackend: scripted(script), secrets: ['hunter2']})
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.body).not.to.contain('hunter2')
      expect(JSON.parse(answer.body).error).to.equal('WRONGPASS invalid password *** for user default')
    })

    it('starts while the backend is down and recovers with a fresh backend instance', async () => {
      const script = new Script()
      script.connect = 'reject'
      const messages: string[] = []
      let now = 1_000_000
      const server = await start({createBackend: scripted(script), cacheMs: 1000, now: () => now, log: (m) => messages.push(m)})
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      expect((await request(server.url, '/healthz')).status).to.equal(503)
      script.connect = 'answer'
      now += 1000
      const answer = await request(server.url, '/unique_ip_count')
      expect(answer.status).to.equal(200)
      expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 7})
      expect(script.created).to.equal(2)
      expect(script.closeCalls).to.equal(1)
      expect(messages).to.have.length(2)
      expect(messages[0]).to.match(/^backend scripted scripted:\/\/127\.0\.0\.1:1 is unavailable: connection refused/)
      expect(messages[1]).to.equal('backend scripted scripted://127.0.0.1:1 is available again')
    })

    it('keeps the last known count in the metrics while the backend is down', async () => {
      const script = new Script()
      const server = await start({createBackend: scripted(script)})
      await request(server.url, '/unique_ip_count')
      script.count = 'reject'
      expect((await request(server.url, '/unique_ip_count')).status).to.equal(503)
      const metrics = (await request(server.url, '/metrics')).body.split('\n')
      expect(metrics).to.include('ipc_unique_device_ip_count 7')
      expect(metrics).to.include('ipc_backend_up 0')
    })
  })

  describe('shutdown', () => {
    it('stops accepting, finishes the request in flight, then closes the backend', async () => {
      const script = new Script()
      script.count = 'wait'
      const server = await createCountServer({createBackend: scripted(script), cacheMs: 0, requestTimeoutMs: 5000})
      await server.listen(0, '127.0.0.1')
      const url = server.url
      const inFlight = request(url, '/unique_ip_count')
      await until('the count query started', () => script.countCalls === 1)
      const closed = server.close()
      let refused: unknown
      await request(url, '/unique_ip_count').catch((error: unknown) => (refused = error))
      expect((refused as NodeJS.ErrnoException | undefined)?.code).to.equal('ECONNREFUSED')
      expect(script.closeCalls).to.equal(0)
      script.pending.resolve(5)
      const answer = await inFlight
      expect(answer.status).to.equal(200)
      expect(JSON.parse(answer.body)).to.deep.equal({unique_device_ip_count: 5})
      await closed
      expect(script.closeCalls).to.equal(1)
      expect(server.http.listening).to.equal(false)
    })

    it('ends keep-alive connections instead of waiting for them to go idle', async () => {
      const script = new Script()
      const server = await createCountServer({createBackend: scripted(script), cacheMs: 0, requestTimeoutMs: 60_000})
      await server.listen(0, '127.0.0.1')
      const agent = new http.Agent({keepAlive: true})
      const idle = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(new URL('/healthz', server.url), {agent}, (res) => res.resume().on('end', () => resolve(res))).on('error', reject)
      })
      expect(idle.headers.connection).to.equal('keep-alive')
      script.count = 'wait'
      const inFlight = new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(new URL('/unique_ip_count', server.url), {agent}, (res) => res.resume().on('end', () => resolve(res))).on('error', reject)
      })
      await until('the second count query started', () => script.countCalls === 2)
      const closed = server.close()
      script.pending.resolve(2)
      expect((await inFlight).headers.connection).to.equal('close')
      await closed
      agent.destroy()
    })

    it('finishes closing even when the backend close hangs', async () => {
      const script = new Script()
      script.close = 'hang'
      const server = await createCountServer({createBackend: scripted(script), requestTimeoutMs: 50})
      await server.listen(0, '127.0.0.1')
      await request(server.url, '/unique_ip_count')
      await server.close()
      expect(script.closeCalls).to.equal(1)
    })

    it('reports a port in use as a ListenError', async () => {
      const first = await start({createBackend: async () => new MemoryBackend()})
      const second = await createCountServer({createBackend: async () => new MemoryBackend()})
      const port = Number(new URL(first.url).port)
      let failure: unknown
      await second.listen(port, '127.0.0.1').catch((error: unknown) => (failure = error))
      expect(failure).to.be.instanceOf(ListenError)
      expect((failure as Error).message).to.equal(`cannot listen on 127.0.0.1:${port}: port ${port} on 127.0.0.1 is already in use`)
      await second.close()
    })
  })
})

describe('serve: withTimeout', () => {
  it('passes through a value that arrives in time', async () => {
    expect(await withTimeout(Promise.resolve(3), 1000, () => new Error('late'))).to.equal(3)
  })

  it('rejects with the timeout error when the promise never settles', async () => {
    const error = new BackendTimeoutError('late', 'scripted', 'here')
    let failure: unknown
    await withTimeout(new Promise(() => {}), 10, () => error).catch((e: unknown) => (failure = e))
    expect(failure).to.equal(error)
    expect(failure).to.be.instanceOf(BackendError)
  })
})
