import {expect} from 'chai'
import {ApiKey, brokerDown, brokerUp, clearRequestErrors, createTopic, KafkaErrorCode, pushRequestErrors, setBrokerRtt} from '../support/broker.js'
import {type RunningCli, runIpc, startIpc, waitFor} from '../support/cli.js'
import {uniqueName} from '../support/services.js'
import {
  ClickHouseProbe,
  type ConsumeJson,
  committedTotal,
  describeRun,
  generatedDevices,
  linesMatching,
  parseJson,
  type ProduceJson,
  reportFigure,
  sleep,
  startProduce,
  waitForChange,
} from './reliability-helpers.js'

/**
 * Faults of the Kafka broker itself, injected through the dev broker's control port while
 * `ipc produce` and `ipc consume` (clickhouse) run: the producer retries, the consumer rejoins
 * or restarts, and at the end every event is stored and the count is exact.
 */
describe('reliability: Kafka broker faults during production and consumption', function () {
  this.timeout(180_000)

  const touchedApiKeys = Object.values(ApiKey)

  afterEach(async () => {
    // Leave the shared broker as the next test expects it.
    await brokerUp(-1)
    await setBrokerRtt(-1, 0)
    for (const apiKey of touchedApiKeys) await clearRequestErrors(apiKey)
  })

  interface Run {
    produced: ProduceJson
    consumed: ConsumeJson
    stderr: string
    producerStderr: string
    probe: ClickHouseProbe
    database: string
    group: string
    topic: string
  }

  /** Runs producer and consumer side by side and applies `faults` once the first events are stored. */
  async function runWithFaults(faults: (consumer: RunningCli, producer: RunningCli) => Promise<void>, options: {untilIdle: string}): Promise<Run> {
    const topic = uniqueName('faults')
    const database = uniqueName('ipc_faults')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const probe = new ClickHouseProbe(database)
    const producer = startProduce(topic, {'--num-devices': '20000', '--num-messages': '40000', '--seed': '41', '--batch': '150', '--pause-ms': '60', '--kafka-log-level': 'warn'})
    const consumer = startIpc(
      ['consume', '--topic', topic, '--backend', 'clickhouse', '--clickhouse-database', database, '--group', group, '--from-beginning',
        '--batch-size', '1000', '--flush-interval', '500ms', '--session-timeout', '4s', '--until-idle', options.untilIdle, '--kafka-log-level', 'warn', '--json'],
      {timeoutMs: 150_000},
    )
    try {
      await waitForChange('the first stored events', () => probe.rows(), 0)
      await faults(consumer, producer)
      const [producerResult, consumerResult] = await Promise.all([producer.done, consumer.done])
      const produced = parseJson<ProduceJson>(producerResult)
      const consumed = parseJson<ConsumeJson>(consumerResult)
      return {produced, consumed, stderr: consumerResult.stderr, producerStderr: producerResult.stderr, probe, database, group, topic}
    } catch (error) {
      await probe.close()
      throw error
    } finally {
      producer.child.kill('SIGKILL')
      consumer.child.kill('SIGKILL')
    }
  }

  async function expectEverythingCounted(run: Run): Promise<void> {
    try {
      expect(run.produced.messagesSent).to.equal(40_000)
      expect(run.consumed.reason).to.equal('idle')
      // A retried produce request may have been stored twice, so the topic can hold more than was sent.
      expect(await committedTotal(run.group, run.topic), 'every offset committed').to.be.at.least(run.produced.messagesSent)
      expect(await run.probe.rows(), 'every event stored').to.be.at.least(run.produced.messagesSent)
      const counted = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', run.database])
      expect(counted.code, describeRun(counted)).to.equal(0)
      expect(counted.stdout).to.equal(`${run.produced.distinctDevices}\n`)
    } finally {
      await run.probe.close()
    }
  }

  it('group and request errors, 400 ms of added latency and a 4 s broker outage: the producer retries, the consumer rejoins and restarts, the count is exact', async () => {
    const {NotLeaderForPartition: notLeader, RequestTimedOut: timedOut, Transport: dropConnection} = KafkaErrorCode
    const seen = (running: RunningCli, pattern: RegExp, what: string) => waitFor(what, () => (pattern.test(running.stderr()) ? true : undefined), 30_000)
    const run = await runWithFaults(
      async (consumer, producer) => {
        // The group: a heartbeat says "rebalancing", and the rejoin meets errors too.
        await pushRequestErrors(ApiKey.JoinGroup, [KafkaErrorCode.CoordinatorNotAvailable])
        await pushRequestErrors(ApiKey.SyncGroup, [KafkaErrorCode.RebalanceInProgress])
        await pushRequestErrors(ApiKey.Heartbeat, [KafkaErrorCode.RebalanceInProgress])
        await seen(consumer, /The group is rebalancing, re-joining/, 'the consumer rejoining its group')
        // Requests: leadership moved, timeouts, connections dropped by the broker.
        await pushRequestErrors(ApiKey.Produce, [notLeader, timedOut, dropConnection])
        await pushRequestErrors(ApiKey.Fetch, [notLeader, dropConnection, timedOut])
        await pushRequestErrors(ApiKey.OffsetCommit, [timedOut, KafkaErrorCode.CoordinatorNotAvailable, KafkaErrorCode.NotCoordinator])
        await seen(consumer, /Response Fetch\(key: 1, version: \d+\) \(This server is not the leader/, 'the consumer meeting the fetch errors')
        await seen(producer, /Response Produce\(key: 0, version: \d+\) \(This server is not the leader/, 'the producer meeting the produce errors')
        await setBrokerRtt(-1, 400)
        await sleep(3000)
        await setBrokerRtt(-1, 0)
        await brokerDown(-1)
        await sleep(4000)
        await brokerUp(-1)
      },
      {untilIdle: '5s'},
    )
    const kafkaErrors = linesMatching(run.stderr, /^kafka (error|warn)/)
    expect(run.stderr, 'the consumer saw the outage').to.match(/ECONNREFUSED|Closed connection/)
    expect(run.producerStderr, 'the producer retried through the outage').to.match(/ECONNREFUSED|Closed connection/)
    await expectEverythingCounted(run)
    reportFigure(
      `broker faults survived: 12 request errors, 3 s at +400 ms, a 4 s outage; consumer logged ${kafkaErrors.length} Kafka errors/warnings, ` +
        `${linesMatching(run.stderr, /consumer restarting after error/).length} client restarts; ${run.produced.messagesSent} events, 0 devices lost`,
    )
  })

  it('a 15 s broker outage, longer than the consumer\'s Kafka retries: it restarts its Kafka client, resumes with the events sent afterwards and counts exactly', async () => {
    const topic = uniqueName('longdown')
    const database = uniqueName('ipc_longdown')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const probe = new ClickHouseProbe(database)
    const produceHalf = (seed: number) =>
      runIpc(['produce', '--topic', topic, '--num-devices', '10000', '--num-messages', '15000', '--seed', String(seed), '--batch', '1000', '--pause-ms', '0', '--json'])
    try {
      // A producer gives up on a broker that stays away longer than its retries (exit 3), so
      // events are sent before and after the outage.
      const before = parseJson<ProduceJson>(await produceHalf(42))
      const consumer = startIpc(
        ['consume', '--topic', topic, '--backend', 'clickhouse', '--clickhouse-database', database, '--group', group, '--from-beginning',
          '--batch-size', '1000', '--flush-interval', '200ms', '--session-timeout', '4s', '--until-idle', '8s', '--kafka-log-level', 'warn', '--json'],
        {timeoutMs: 150_000},
      )
      try {
        await waitForChange('the first stored events', () => probe.rows(), 0)
        await brokerDown(-1)
        await sleep(15_000)
        await brokerUp(-1)
        const after = parseJson<ProduceJson>(await produceHalf(43))
        const result = await consumer.done
        const consumed = parseJson<ConsumeJson>(result)
        expect(consumed.reason).to.equal('idle')
        expect(result.stderr, 'the Kafka client gave up and was restarted').to.match(/consumer restarting after error/)
        const sent = before.messagesSent + after.messagesSent
        expect(await committedTotal(group, topic)).to.equal(sent)
        const devices = new Set([...generatedDevices(42, 10_000, 15_000), ...generatedDevices(43, 10_000, 15_000)])
        const counted = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database])
        expect(counted.stdout).to.equal(`${devices.size}\n`)
        reportFigure(`15 s broker outage survived by the consumer (${linesMatching(result.stderr, /consumer restarting after error/).length} client restarts); ${sent} events, 0 devices lost`)
      } finally {
        consumer.child.kill('SIGKILL')
      }
    } finally {
      await probe.close()
    }
  })
})
