import {expect} from 'chai'
import {createClient, createCluster} from '@redis/client'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {RedisBackend} from '../../src/backends/redis/redis-backend.js'
import {parseClusterNodes} from '../../src/backends/redis/cluster-nodes.js'
import {bucketKeyPrefix, RedisKeys} from '../../src/backends/redis/keys.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {bucketStart, HOUR_MS} from '../../src/query/count-query.js'
import {createTopic} from '../support/kafka.js'
import {runIpc, startIpc} from '../support/cli.js'
import {uniqueName} from '../support/services.js'
import {type ConsumeJson, parseJson, produce, redisConsumeArgs} from '../support/runs.js'
import {CLEAN_ENV, exactCount, exactSeries, iso, windowEvents, withinHllError} from './windows-fixture.js'

/** The dev Redis Cluster (3 masters) that scripts/services starts; its nodes as host:port,... */
function clusterNodes(): string {
  const nodes = process.env.DEV_REDIS_CLUSTER_NODES
  if (!nodes) throw new Error('DEV_REDIS_CLUSTER_NODES is not set: run through mocha with the global setup (scripts/services starts the cluster)')
  return nodes
}

function options(key: string, overrides: Partial<BackendOptions> = {}): BackendOptions {
  return {
    redisUrl: 'redis://unused:1',
    redisKey: key,
    redisClusterNodes: clusterNodes(),
    clickhouseUrl: 'http://unused:1',
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: 'unused',
    requestTimeoutMs: 5000,
    ...overrides,
  }
}

function ip(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`
}

/** Deletes a base key and its bucket keys; they all live on the one node serving their hash slot. */
async function deleteKeys(key: string): Promise<void> {
  const cluster = createCluster({rootNodes: parseClusterNodes(clusterNodes()).nodes.map((node) => ({socket: node}))})
  await cluster.connect()
  try {
    const prefix = new RedisKeys(key).prefix
    const node = cluster.slots[await slotOf(prefix)].master
    const client = await cluster.nodeClient(node)
    const found: string[] = [key]
    for await (const keys of client.scanIterator({MATCH: `${prefix.replace(/[{}*?[\]\\]/g, '\\$&')}*`, COUNT: 1000})) found.push(...keys)
    for (const name of found) await cluster.del(name)
  } finally {
    await cluster.close()
  }
}

async function slotOf(key: string): Promise<number> {
  const [first] = parseClusterNodes(clusterNodes()).nodes
  const client = createClient({socket: first})
  await client.connect()
  try {
    return await client.clusterKeySlot(key)
  } finally {
    await client.close()
  }
}

describe('redis backend on a Redis Cluster', () => {
  const keys: string[] = []
  const opened: RedisBackend[] = []

  function backend(overrides: Partial<BackendOptions> = {}): RedisBackend {
    const created = new RedisBackend(options(uniqueName('ipc_test_cluster'), overrides))
    keys.push(created.key)
    opened.push(created)
    return created
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((created) => created.close()))
    for (const key of keys.splice(0)) await deleteKeys(key)
  })

  it('runs against a formed cluster of three masters', async () => {
    const [first] = parseClusterNodes(clusterNodes()).nodes
    const client = createClient({socket: first})
    await client.connect()
    try {
      const info = await client.clusterInfo()
      expect(info)
        .to.match(/cluster_state:ok/)
        .and.match(/cluster_size:3/)
    } finally {
      await client.close()
    }
  })

  it('keeps the all-time key and every bucket key of one base key in one hash slot', async () => {
    const key = uniqueName('ipc_test_slot')
    const names = new RedisKeys(key)
    const hour = bucketStart(Date.now(), 'hour')
    const slots = new Set(
      await Promise.all([key, names.hour(hour), names.errorCode(-3), names.hourErrorCode(hour, 7), names.temporary()].map((name) => slotOf(name))),
    )
    expect(slots.size).to.equal(1)
    // A key with its own hash tag keeps it.
    expect(bucketKeyPrefix('devices:{tenant1}')).to.equal('devices:{tenant1}')
    expect(bucketKeyPrefix('plain')).to.equal('{plain}')
    expect(bucketKeyPrefix('empty{}tag')).to.equal('{empty{}tag}')
  })

  it('estimates the all-time count within 2%', async () => {
    const redis = backend()
    await redis.connect()
    const events: DeviceEvent[] = []
    for (let n = 0; n < 20_000; n++) events.push({timestampMs: Date.now() - (n % 7200) * 1000, deviceIp: ip(n), errorCode: n % 4})
    for (let start = 0; start < events.length; start += 5000) await redis.add(events.slice(start, start + 5000))
    await redis.flush()
    const count = await redis.count()
    expect(Math.abs(count - 20_000) / 20_000).to.be.at.most(0.02)
    expect(redis.location).to.equal(`redis-cluster://${clusterNodes()}`)
  })

  it('counts time windows, error codes and series like a single Redis', async () => {
    const redis = backend()
    await redis.connect()
    const {baseMs, events} = windowEvents()
    for (let start = 0; start < events.length; start += 400) await redis.add(events.slice(start, start + 400))
    await redis.flush()
    const range = {sinceMs: baseMs + HOUR_MS, untilMs: baseMs + 4 * HOUR_MS, errorCodes: [1, 9]}
    const estimate = await redis.countUnique(range)
    expect(withinHllError(estimate, exactCount(events, range)), `${estimate} vs ${exactCount(events, range)}`).to.equal(true)
    const series = await redis.countSeries({sinceMs: baseMs, untilMs: baseMs + 6 * HOUR_MS, errorCodes: []}, 'hour')
    const expected = exactSeries(events, {sinceMs: baseMs, untilMs: baseMs + 6 * HOUR_MS, errorCodes: []}, 'hour')
    expect(series.map((point) => point.startMs)).to.deep.equal(expected.map((point) => point.startMs))
    series.forEach((point, index) => expect(withinHllError(point.count, expected[index].count), `${iso(point.startMs)}`).to.equal(true))
    // More keys than one PFCOUNT takes: merged through a temporary key in the same slot.
    const allCodes = Array.from({length: 256}, (_, index) => index - 128)
    const wide = {sinceMs: baseMs - 3 * 24 * HOUR_MS, untilMs: baseMs + 6 * HOUR_MS, errorCodes: allCodes}
    expect(withinHllError(await redis.countUnique(wide), exactCount(events, wide))).to.equal(true)
  })

  it('ipc count reads the cluster with --redis-cluster', async () => {
    const redis = backend()
    await redis.connect()
    const {baseMs, events} = windowEvents()
    await redis.add(events)
    await redis.flush()
    const all = await redis.count()
    const plain = await runIpc(['count', '--backend', 'redis', '--redis-cluster', clusterNodes(), '--redis-key', redis.key], {env: CLEAN_ENV})
    expect(plain).to.include({code: 0, stdout: `${all}\n`, stderr: ''})
    const viaEnv = await runIpc(
      ['count', '--backend', 'redis', '--redis-key', redis.key, '--since', iso(baseMs), '--until', iso(baseMs + 2 * HOUR_MS), '--json'],
      {
        env: {...CLEAN_ENV, REDIS_CLUSTER_NODES: clusterNodes()},
      },
    )
    const parsed = parseJson<{unique_device_ip_count: number}>(viaEnv)
    const exact = exactCount(events, {sinceMs: baseMs, untilMs: baseMs + 2 * HOUR_MS, errorCodes: []})
    expect(withinHllError(parsed.unique_device_ip_count, exact), `${parsed.unique_device_ip_count} vs ${exact}`).to.equal(true)
  })

  it('refuses a malformed --redis-cluster with exit code 2', async () => {
    const result = await runIpc(['count', '--backend', 'redis', '--redis-cluster', '127.0.0.1'], {env: CLEAN_ENV})
    expect(result.code).to.equal(2)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.include('invalid Redis Cluster node "127.0.0.1"')
  })

  it('two ipc consume processes sharing a group count the same as one', async () => {
    const topic = uniqueName('cluster_shared')
    const sharedKey = uniqueName('ipc_test_cluster_pair')
    const singleKey = uniqueName('ipc_test_cluster_single')
    keys.push(sharedKey, singleKey)
    await createTopic(topic, 4)
    const env = {...CLEAN_ENV, REDIS_CLUSTER_NODES: clusterNodes()}
    const consume = (key: string, group: string) => startIpc(redisConsumeArgs(topic, key, group, {'--until-idle': '5s'}), {env})
    const group = uniqueName('g')
    const first = consume(sharedKey, group)
    const second = consume(sharedKey, group)
    // A third consumer in a group of its own reads the whole topic into another key.
    const single = consume(singleKey, uniqueName('g'))
    // Produce while they join and consume, so both members of the shared group own partitions while events flow.
    const produced = await produce(topic, {'--num-devices': '3000', '--num-messages': '30000', '--seed': '11', '--batch': '1000', '--pause-ms': '200'})
    const [a, b, alone] = (await Promise.all([first.done, second.done, single.done])).map((result) => parseJson<ConsumeJson>(result))
    expect(a.stats.processed, 'first consumer took part').to.be.greaterThan(0)
    expect(b.stats.processed, 'second consumer took part').to.be.greaterThan(0)
    expect(a.stats.processed + b.stats.processed).to.be.at.least(produced.messagesSent)
    expect(alone.stats.processed).to.equal(produced.messagesSent)

    const count = async (key: string, ...extra: string[]) =>
      (await runIpc(['count', '--backend', 'redis', '--redis-cluster', clusterNodes(), '--redis-key', key, ...extra], {env: CLEAN_ENV})).stdout
    // The same devices give the same HyperLogLog registers, in whatever order and split they arrive.
    const together = await count(sharedKey)
    expect(together).to.equal(await count(singleKey))
    expect(Math.abs(Number(together) - produced.distinctDevices) / produced.distinctDevices).to.be.below(0.02)
    const thisHour = bucketStart(Date.now(), 'hour')
    const window = ['--since', iso(thisHour - 3 * HOUR_MS), '--until', iso(thisHour + HOUR_MS), '--by', 'hour']
    expect(await count(sharedKey, ...window)).to.equal(await count(singleKey, ...window))
    expect(await count(sharedKey, '--error-code', '3,4')).to.equal(await count(singleKey, '--error-code', '3,4'))
  })
})
