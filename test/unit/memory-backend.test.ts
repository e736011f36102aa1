import {expect} from 'chai'
import {BackendError, type DeviceEvent} from '../../src/backends/backend.js'
import {urlWithoutCredentials} from '../../src/backends/connection-url.js'
import {backoffDelayMs, retryWithBackoff} from '../../src/backends/retry.js'
import {errorReason} from '../../src/util/errors.js'
import {MemoryBackend} from '../../src/backends/memory.js'
import {createBackend} from '../../src/backends/registry.js'

function event(deviceIp: string, timestampMs = 1_638_548_130_123): DeviceEvent {
  return {timestampMs, deviceIp, errorCode: 0}
}

describe('MemoryBackend', () => {
  it('counts distinct device IPs exactly across calls, ignoring duplicates', async () => {
    const backend = new MemoryBackend()
    await backend.connect()
    expect(await backend.count()).to.equal(0)
    await backend.add([event('10.0.0.1'), event('10.0.0.2'), event('10.0.0.1')])
    await backend.add([event('10.0.0.2'), event('2001:db8::1')])
    await backend.add([])
    expect(await backend.count()).to.equal(3)
    await backend.flush()
    await backend.close()
  })

  it('hands out receipts that are durable at once', async () => {
    const backend = new MemoryBackend()
    const receipt = await backend.add([event('192.0.2.7')])
    await receipt.durable
    expect(await backend.count()).to.equal(1)
  })

  it('follows the lifecycle contract after close(): a second close() resolves, connect(), add() and counts reject', async () => {
    const backend = new MemoryBackend()
    await backend.add([event('192.0.2.7')])
    await Promise.all([backend.close(), backend.close()])
    await backend.flush()
    for (const operation of [
      () => backend.connect(),
      () => backend.add([event('192.0.2.8')]),
      () => backend.count(),
      () => backend.countUnique({errorCodes: []}),
    ]) {
      const failure = await operation().catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError).with.property('message', 'memory backend is closed')
      expect((failure as BackendError).retriable).to.equal(false)
    }
  })

  it('describes itself as exact, in-process', () => {
    const backend = new MemoryBackend()
    expect([backend.name, backend.exact, backend.location]).to.deep.equal(['memory', true, 'memory'])
  })

  it('is what the registry creates for "memory", and the registry rejects unknown names', async () => {
    const options = {redisUrl: '', redisKey: '', clickhouseUrl: '', clickhouseUser: '', clickhousePassword: '', clickhouseDatabase: ''}
    expect(await createBackend('memory', options)).to.be.instanceOf(MemoryBackend)
    let failure: unknown
    await createBackend('mongo', options).catch((error: unknown) => (failure = error))
    expect(failure).to.be.instanceOf(Error).with.property('message').that.includes('unknown backend "mongo"')
  })
})

describe('backend helpers', () => {
  it('urlWithoutCredentials drops user and password and keeps the rest as written', () => {
    expect(urlWithoutCredentials('redis://user:secret@127.0.0.1:6379/2')).to.equal('redis://127.0.0.1:6379/2')
    expect(urlWithoutCredentials('redis://:secret@127.0.0.1:6379')).to.equal('redis://127.0.0.1:6379')
    expect(urlWithoutCredentials('http://default:pw@127.0.0.1:8123')).to.equal('http://127.0.0.1:8123')
    expect(urlWithoutCredentials('http://127.0.0.1:8123/')).to.equal('http://127.0.0.1:8123/')
    expect(urlWithoutCredentials('redis://127.0.0.1:6379')).to.equal('redis://127.0.0.1:6379')
    expect(urlWithoutCredentials('not a url //u:secret@x')).to.not.include('secret')
  })

  it('backoffDelayMs doubles from the initial delay up to the cap', () => {
    const policy = {initialDelayMs: 100, maxDelayMs: 1000}
    expect([1, 2, 3, 4, 5, 6, 100].map((retry) => backoffDelayMs(policy, retry))).to.deep.equal([100, 200, 400, 800, 1000, 1000, 1000])
  })

  it('retryWithBackoff retries until success and reports each failure with the next wait', async () => {
    let attempts = 0
    const reports: number[] = []
    const result = await retryWithBackoff(
      async () => {
        attempts++
        if (attempts < 4) throw new Error(`failure ${attempts}`)
        return 'written'
      },
      {policy: {initialDelayMs: 1, maxDelayMs: 4}, onFailure: (_error, retryInMs) => reports.push(retryInMs)},
    )
    expect(result).to.equal('written')
    expect(reports).to.deep.equal([1, 2, 4])
  })

  it('retryWithBackoff gives up at once on a permanent failure', async () => {
    let attempts = 0
    const permanent = new Error('WRONGTYPE')
    const outcome = await retryWithBackoff(
      async () => {
        attempts++
        throw permanent
      },
      {policy: {initialDelayMs: 1, maxDelayMs: 1}, onFailure: () => {}, isRetryable: (error) => error !== permanent},
    ).catch((error: unknown) => error)
    expect(outcome).to.equal(permanent)
    expect(attempts).to.equal(1)
  })

  it('retryWithBackoff rejects with the last failure once maxRetryTimeMs has passed', async () => {
    let attempts = 0
    const outcome = await retryWithBackoff(
      async () => {
        attempts++
        throw new Error(`failure ${attempts}`)
      },
      {policy: {initialDelayMs: 5, maxDelayMs: 10, maxRetryTimeMs: 50}, onFailure: () => {}},
    ).catch((error: unknown) => error)
    expect(outcome).to.be.instanceOf(Error).with.property('message', `failure ${attempts}`)
    expect(attempts).to.be.greaterThan(1)
  })

  it('retryWithBackoff stops waiting when its signal aborts', async () => {
    const controller = new AbortController()
    const closed = new BackendError('closed', 'test', 'here')
    const outcome = retryWithBackoff(
      async () => {
        throw new Error('down')
      },
      {policy: {initialDelayMs: 60_000, maxDelayMs: 60_000}, onFailure: () => controller.abort(closed), signal: controller.signal},
    ).catch((error: unknown) => error)
    expect(await outcome).to.equal(closed)
  })

  it('errorReason gives a one-line reason, also for AggregateErrors without a message', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {code: 'ECONNREFUSED'})
    expect(errorReason(new AggregateError([refused, refused]))).to.equal('connect ECONNREFUSED 127.0.0.1:1')
    expect(errorReason(Object.assign(new Error(''), {code: 'ETIMEDOUT'}))).to.equal('ETIMEDOUT')
    expect(errorReason(new Error('first line\n    at stack'))).to.equal('first line')
    expect(errorReason('plain')).to.equal('plain')
  })
})
