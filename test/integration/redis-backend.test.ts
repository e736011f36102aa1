import {expect} from 'chai'
import {createClient} from '@redis/client'
import {BackendError, type DeviceEvent} from '../../src/backends/backend.js'
import {RedisBackend} from '../../src/backends/redis/redis-backend.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {IdentifierError} from '../../src/backends/identifiers.js'
import {waitFor} from '../support/cli.js'
import {redisCount, redisUrl, uniqueName} from '../support/services.js'
import {closedPort, CuttableLink} from '../support/tcp-proxy.js'

function options(overrides: Partial<BackendOptions> = {}): BackendOptions {
  return {
    redisUrl: redisUrl(),
    redisKey: uniqueName('ipc_test_hll'),
    clickhouseUrl: '',
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: 'ipc',
    requestTimeoutMs: 3000,
    ...overrides,
  }
}

function ip(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`
}

function events(from: number, to: number): DeviceEvent[] {
  const list: DeviceEvent[] = []
  for (let n = from; n < to; n++) list.push({timestampMs: 1_638_548_130_123 + n, deviceIp: ip(n), errorCode: n % 128})
  return list
}

describe('RedisBackend (real Redis)', () => {
  const opened: RedisBackend[] = []
  const keys: string[] = []

  function backend(overrides: Partial<BackendOptions> = {}): RedisBackend {
    const created = new RedisBackend(options(overrides))
    opened.push(created)
    keys.push(created.key)
    return created
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((created) => created.close()))
    const client = createClient({url: redisUrl()})
    await client.connect()
    if (keys.length > 0) await client.del(keys.splice(0))
    await client.close()
  })

  it('estimates 20,000 distinct devices within 2% from adds of several sizes', async () => {
    const redis = backend()
    await redis.connect()
    // One call larger than a PFADD chunk, so chunking is exercised too.
    for (const [from, to] of [
      [0, 1],
      [1, 500],
      [500, 12_500],
      [12_500, 15_000],
      [15_000, 20_000],
    ]) {
      const receipt = await redis.add(events(from, to))
      await receipt.durable
    }
    const count = await redis.count()
    expect(Math.abs(count - 20_000) / 20_000).to.be.at.most(0.02)
    expect(redis.exact).to.equal(false)
  })

  it('does not count repeated devices again, within a call or across calls', async () => {
    const redis = backend()
    await redis.connect()
    await redis.add(events(0, 3000))
    await redis.flush()
    const first = await redis.count()
    await redis.add([...events(0, 3000), ...events(0, 3000)])
    await redis.add(events(1000, 2000))
    await redis.flush()
    expect(await redis.count()).to.equal(first)
  })

  it('keeps keys apart', async () => {
    const first = backend()
    const second = backend()
    await Promise.all([first.connect(), second.connect()])
    await first.add(events(0, 100))
    await second.add(events(100, 103))
    await Promise.all([first.flush(), second.flush()])
    expect(await second.count()).to.equal(3)
    expect(await first.count()).to.be.within(98, 102)
  })

  it('stores into the key it was given, as a HyperLogLog', async () => {
    const redis = backend()
    await redis.connect()
    await (
      await redis.add(events(0, 10))
    ).durable
    expect(await redisCount(redis.key)).to.equal(10)
  })

  it('close() writes what is buffered, also when called twice at once, and then refuses add()', async () => {
    const redis = backend()
    await redis.connect()
    await redis.add(events(0, 50))
    await Promise.all([redis.close(), redis.close()])
    expect(await redisCount(redis.key)).to.equal(50)
    expect(await redis.add(events(50, 51)).catch((error: unknown) => error)).to.be.instanceOf(BackendError)
  })

  it('refuses an invalid key before connecting', () => {
    expect(() => new RedisBackend(options({redisKey: 'has space'}))).to.throw(IdentifierError)
    expect(() => new RedisBackend(options({redisKey: ''}))).to.throw(IdentifierError)
  })

  it('fails connect() and count() with a retriable BackendError naming the URL, without the password, when Redis is unreachable', async function () {
    this.timeout(15_000)
    const port = await closedPort()
    const redis = backend({redisUrl: `redis://user:secret@127.0.0.1:${port}`})
    for (const operation of [() => redis.connect(), () => redis.count()]) {
      const failure = await operation().catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError)
      const {message, location} = failure as BackendError
      expect(message).to.include(`redis://127.0.0.1:${port}`).and.not.include('secret')
      expect(location).to.equal(`redis://127.0.0.1:${port}`)
      expect((failure as BackendError).retriable, 'a Redis that is down may come back').to.equal(true)
    }
  })

  it('refuses to count a key that holds something other than a HyperLogLog', async () => {
    const redis = backend()
    const client = createClient({url: redisUrl()})
    await client.connect()
    await client.lPush(redis.key, 'not a hyperloglog')
    await client.close()
    const failure = await redis.connect().catch((error: unknown) => error)
    expect(failure).to.be.instanceOf(BackendError).with.property('message').that.includes('WRONGTYPE')
    expect((failure as BackendError).retriable).to.equal(false)
    // Not retried (the key will not change type by itself): the receipt rejects, and so does every later call.
    const receipt = await redis.add(events(0, 1))
    const writeFailure = await receipt.durable.catch((error: unknown) => error)
    expect(writeFailure).to.be.instanceOf(BackendError).with.property('message').that.includes('WRONGTYPE')
    expect(await redis.add(events(1, 2)).catch((error: unknown) => error)).to.equal(writeFailure)
  })

  describe('while Redis is unreachable during consumption', () => {
    let link: CuttableLink

    beforeEach(async () => {
      const target = new URL(redisUrl())
      link = await new CuttableLink(target.hostname, Number(target.port || 6379)).start()
    })

    afterEach(async () => {
      await link.stop()
    })

    function linkedUrl(): string {
      const target = new URL(redisUrl())
      target.port = String(link.port)
      return target.toString()
    }

    it('retries add() with backoff, reporting each failure, and completes once Redis is back', async () => {
      const failures: BackendError[] = []
      const redis = backend({redisUrl: linkedUrl()})
      redis.on('write-failed', (error) => failures.push(error))
      await redis.connect()
      await (
        await redis.add(events(0, 10))
      ).durable
      link.cut()
      let settled = false
      const receipt = await redis.add(events(10, 20))
      void receipt.durable.finally(() => (settled = true))
      await waitFor('two reported failures', () => (failures.length >= 2 ? true : undefined), 20_000)
      expect(settled).to.equal(false)
      expect(failures[0]).to.be.instanceOf(BackendError)
      expect(failures[0].message).to.include(`127.0.0.1:${link.port}`).and.include('retrying')
      link.restore()
      await receipt.durable
      expect(await redis.count()).to.equal(20)
    })

    it('gives up once maxRetryTimeMs has passed: the receipt rejects without further calls, and so do later calls', async () => {
      const redis = backend({redisUrl: linkedUrl(), maxRetryTimeMs: 500})
      await redis.connect()
      link.cut()
      const receipt = await redis.add(events(0, 5))
      const failure = await receipt.durable.catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError).with.property('message').that.includes('gave up')
      expect(await redis.add(events(5, 6)).catch((error: unknown) => error)).to.equal(failure)
      expect(await redis.flush().catch((error: unknown) => error)).to.equal(failure)
    })

    it('close() stops the retries: the unwritten receipt and close() reject', async () => {
      const failures: BackendError[] = []
      const redis = backend({redisUrl: linkedUrl()})
      redis.on('write-failed', (error) => failures.push(error))
      await redis.connect()
      link.cut()
      const receipt = await redis.add(events(0, 5))
      await waitFor('a reported failure', () => (failures.length > 0 ? true : undefined), 20_000)
      const closing = await redis.close().catch((error: unknown) => error)
      expect(closing).to.be.instanceOf(BackendError).with.property('message').that.includes('closed')
      expect(await receipt.durable.catch((error: unknown) => error)).to.equal(closing)
    })
  })
})
