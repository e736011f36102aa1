import {expect} from 'chai'
import {createTopic, readTopic} from '../support/kafka.js'
import {type CliResult, runIpc, type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {redisCount, serviceUrls, uniqueName} from '../support/services.js'
import {ResponseDelayingLink} from '../support/tcp-proxy.js'
import {
  clickhouseCount,
  ClickHouseProbe,
  consumeArgs,
  type ConsumeJson,
  describeRun,
  parseJson,
  type ProduceJson,
  reportFigure,
  sleep,
  startProduce,
  waitForChange,
} from '../support/runs.js'

/**
 * kill -9 at random points of a flowing stream, restart with the same group, repeat; a final run
 * must then have stored every device. Many devices are seen only once (25,000 devices, 40,000
 * events), so losing even a small batch would show in the count. ClickHouse is reached through a
 * relay that holds back the answer to the first insert until after the consumer's timeout, so that
 * insert is applied by the server and retried by the consumer; with the replays after each kill,
 * the raw events must still read back once each.
 */
describe('reliability: consumers killed with kill -9 mid-stream lose nothing', function () {
  this.timeout(300_000)

  const topic = uniqueName('crash')
  const database = uniqueName('ipc_crash')
  const redisKey = uniqueName('ipc:crash')
  const sessionTimeout = '3s'
  let produced: ProduceJson
  let rowsBeforeFinalRun = 0
  const finals = {} as Record<'clickhouse' | 'redis', CliResult>
  const kills = {clickhouse: 0, redis: 0}
  const killedAfterFlush: number[] = []
  let clickhouse: ClickHouseProbe
  let delayingLink: ResponseDelayingLink
  let retriedInsertReported = false

  interface Target {
    backend: 'clickhouse' | 'redis'
    group: string
    backendFlags: Record<string, string>
    /** What grows when the consumer stored something. */
    stored: () => Promise<number>
  }

  type KillStep = 'after-flush' | 'mid-batch' | 'after-retry'

  const targets: Target[] = []

  /** A run to be killed, or with `final` the last run: until idle for 3 s, its summary as JSON. */
  function consumeArgsFor(target: Target, {final = false} = {}): string[] {
    const flags = {
      '--backend': target.backend,
      ...target.backendFlags,
      '--batch-size': '2000',
      '--flush-interval': '1s',
      '--session-timeout': sessionTimeout,
      '--report-interval': '1h',
      ...(final ? {'--until-idle': '3s'} : {}),
    }
    return consumeArgs(topic, target.group, flags, {json: final})
  }

  /**
   * Waits for the moment of `step` in a run started when `target` had stored `before`:
   * `after-flush` as soon as the stored count grows (a flush just committed its offsets or is about
   * to); `mid-batch` a random 150–900 ms more, so events are fetched and buffered but not yet
   * flushed (flush interval 1 s, batch 2,000); `after-retry` once the consumer reported a failed
   * insert and the stored count grew again, then as `after-flush`.
   */
  async function waitForKillPoint(target: Target, step: KillStep, consumer: RunningCli, before: number, producing: () => boolean): Promise<void> {
    if (step === 'after-retry') {
      await waitFor('the consumer reporting the timed-out insert', () => (consumer.stderr().includes('retrying in') ? true : undefined), 60_000)
      retriedInsertReported = true
      const afterTimeout = await target.stored()
      await waitForChange('the retried insert', target.stored, afterTimeout, 30_000)
    }
    try {
      await waitForChange(`${target.backend} storing events after a restart`, target.stored, before, producing() ? 60_000 : 20_000)
    } catch (error) {
      // The stream may have ended while the consumer was rejoining; a kill at an idle moment still counts.
      if (producing()) throw error
    }
    if (step === 'mid-batch') await sleep(150 + Math.floor(Math.random() * 750))
  }

  async function killAndExpectKilled(target: Target, consumer: RunningCli): Promise<void> {
    consumer.child.kill('SIGKILL')
    const result = await consumer.done
    expect(result.signal, `${target.backend} consumer ended before the kill: ${describeRun(result)}`).to.equal('SIGKILL')
    kills[target.backend]++
  }

  /** Starts a consumer of `target` per step of the plan and kills it with kill -9 at that step's moment. */
  async function killRepeatedly(target: Target, plan: readonly KillStep[], producing: () => boolean): Promise<void> {
    for (const step of plan) {
      const before = await target.stored()
      const consumer = startIpc(consumeArgsFor(target), {timeoutMs: 120_000})
      await waitForKillPoint(target, step, consumer, before, producing)
      if (step === 'after-flush' && target.backend === 'clickhouse') killedAfterFlush.push(await target.stored())
      await killAndExpectKilled(target, consumer)
    }
  }

  /** The producer of ~28 s of events, so the kills land while the stream flows. */
  function startPacedStream(): {done: Promise<CliResult>; producing: () => boolean} {
    const producer = startProduce(topic, {'--num-devices': '25000', '--num-messages': '40000', '--seed': '20', '--batch': '100', '--pause-ms': '60'})
    let producing = true
    const done = producer.done.then((result) => {
      producing = false
      return result
    })
    return {done, producing: () => producing}
  }

  before(async () => {
    // Given a paced stream and, per backend, a group whose consumers are killed four times at
    // planned moments (the first ClickHouse insert answered only after the client's timeout);
    // when a final run per group reads what the killed runs left uncommitted;
    // then each backend holds every device (the tests below).
    await createTopic(topic, 4)
    clickhouse = new ClickHouseProbe(database)
    delayingLink = await new ResponseDelayingLink(new URL(serviceUrls().clickhouseUrl), 'query=INSERT', 6000).start()
    targets.push(
      {
        backend: 'clickhouse',
        group: uniqueName('g_ch'),
        backendFlags: {'--clickhouse-database': database, '--clickhouse-url': delayingLink.url, '--backend-timeout': '2s'},
        stored: () => clickhouse.rows(),
      },
      {backend: 'redis', group: uniqueName('g_redis'), backendFlags: {'--redis-key': redisKey}, stored: () => redisCount(redisKey)},
    )
    const stream = startPacedStream()
    await Promise.all([
      killRepeatedly(targets[0], ['after-retry', 'mid-batch', 'after-flush', 'mid-batch'], stream.producing),
      killRepeatedly(targets[1], ['mid-batch', 'after-flush', 'mid-batch', 'mid-batch'], stream.producing),
    ])
    produced = parseJson<ProduceJson>(await stream.done)
    expect(produced.messagesSent).to.equal(40_000)
    rowsBeforeFinalRun = await clickhouse.rows()
    ;[finals.clickhouse, finals.redis] = await Promise.all(targets.map((target) => runIpc(consumeArgsFor(target, {final: true}))))
  })

  after(async () => {
    await clickhouse?.close()
    await delayingLink?.stop()
  })

  it('clickhouse: after 4 kills and a retried insert that the server had applied, the deduplicated view holds each message once', async () => {
    expect(kills.clickhouse).to.equal(4)
    expect(delayingLink.delayed, 'one insert answered only after the client timeout').to.equal(1)
    expect(retriedInsertReported).to.equal(true)
    expect(rowsBeforeFinalRun, 'the killed runs stored events').to.be.greaterThan(0)
    expect(parseJson<ConsumeJson>(finals.clickhouse).reason).to.equal('idle')
    const messages = await readTopic(topic)
    expect(messages.length).to.be.at.least(produced.messagesSent)
    const rows = await clickhouse.rows()
    const [once] = await clickhouse.query<{events: string; coordinates: string; devices: string}>(
      `SELECT count() AS events, uniqExact(kafka_partition, kafka_offset) AS coordinates, ` +
        `uniqExact(device_ip) AS devices FROM \`${database}\`.events_deduplicated`,
    )
    expect(Number(once.events), 'one row per message').to.equal(messages.length)
    expect(Number(once.coordinates)).to.equal(messages.length)
    expect(Number(once.devices)).to.equal(produced.distinctDevices)
    const perDevice = await clickhouse.query<{device_ip: string; events: string}>(
      `SELECT device_ip, count() AS events FROM \`${database}\`.events_deduplicated GROUP BY device_ip`,
    )
    const truth = new Map<string, number>()
    for (const message of messages) truth.set(message.key, (truth.get(message.key) ?? 0) + 1)
    expect(new Map(perDevice.map((row) => [row.device_ip, Number(row.events)]))).to.deep.equal(truth)
    const counted = await clickhouseCount(database)
    expect(counted.code, counted.stderr).to.equal(0)
    expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
    reportFigure(
      `clickhouse: ${kills.clickhouse} kills survived (${killedAfterFlush.length} right after a flush) and 1 retried insert, ${messages.length} events, ` +
        `${rows - messages.length} rows stored twice before merges, read once through the view`,
    )
  })

  it('redis: after 4 kills a final run counts the devices within the HyperLogLog error (2%)', async () => {
    expect(kills.redis).to.equal(4)
    expect(parseJson<ConsumeJson>(finals.redis).reason).to.equal('idle')
    const counted = await runIpc(['count', '--backend', 'redis', '--redis-key', redisKey])
    expect(counted.code, counted.stderr).to.equal(0)
    const estimate = Number(counted.stdout.trim())
    const error = Math.abs(estimate - produced.distinctDevices) / produced.distinctDevices
    expect(error).to.be.below(0.02)
    reportFigure(`redis: ${kills.redis} kills survived, estimate ${estimate} for ${produced.distinctDevices} devices (${(error * 100).toFixed(2)}% off)`)
  })
})
