import {expect} from 'chai'
import {type RunningCli, runIpc, startIpc} from '../support/cli.js'
import {committedTotal, createTopic, killKafka, startKafka, stopKafka} from '../support/kafka.js'
import {uniqueName} from '../support/services.js'
import {
  clickhouseConsumeArgs,
  ClickHouseProbe,
  type ConsumeJson,
  describeRun,
  expectEverythingCounted,
  generatedDevices,
  linesMatching,
  parseJson,
  type ProduceJson,
  reportFigure,
  sleep,
  startProduce,
  waitForChange,
} from '../support/runs.js'

/**
 * Faults of the Kafka broker itself, done to the real broker's process while `ipc produce` and
 * `ipc consume` (clickhouse) run: a controlled restart, and kill -9 with a long outage. The producer
 * retries, the consumer reconnects or restarts its client, and at the end every event is stored and
 * the count is exact. Failover between nodes is in reliability-failover.test.ts.
 */
describe('reliability: Kafka broker faults during production and consumption', function () {
  this.timeout(180_000)

  afterEach(async () => {
    // Leave the shared broker running for the next test, whatever happened in this one.
    await startKafka('kafka')
  })

  it('the broker restarted (controlled shutdown) mid-stream: the producer retries, the consumer reconnects, the count is exact', async () => {
    const topic = uniqueName('restart')
    const database = uniqueName('ipc_restart')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const probe = new ClickHouseProbe(database)
    const producer = startProduce(topic, {
      '--num-devices': '20000',
      '--num-messages': '40000',
      '--seed': '41',
      '--batch': '200',
      '--pause-ms': '40',
      '--kafka-log-level': 'warn',
    })
    const consumer = startConsumer(topic, database, group, '6s')
    try {
      await waitForChange('the first stored events', () => probe.rows(), 0)
      await stopKafka('kafka')
      await sleep(2000)
      await startKafka('kafka')
      const [producerResult, consumerResult] = await Promise.all([producer.done, consumer.done])
      const produced = parseJson<ProduceJson>(producerResult)
      const consumed = parseJson<ConsumeJson>(consumerResult)
      expect(produced.messagesSent).to.equal(40_000)
      expect(consumed.reason).to.equal('idle')
      expect(producerResult.stderr, 'the producer met the stopped broker').to.match(/ECONNREFUSED|Closed connection|not the leader|disconnected/i)
      await expectEverythingCounted(probe, database, group, topic, produced)
      reportFigure(
        `broker restart mid-stream survived: consumer logged ${linesMatching(consumerResult.stderr, /^kafka (error|warn)/).length} Kafka errors/warnings; ` +
          `${produced.messagesSent} events, 0 devices lost`,
      )
    } finally {
      producer.child.kill('SIGKILL')
      consumer.child.kill('SIGKILL')
      await probe.close()
    }
  })

  it("the broker killed with kill -9 and down for 15 s, longer than the consumer's Kafka retries: it restarts its client, resumes and counts exactly", async () => {
    const topic = uniqueName('killed')
    const database = uniqueName('ipc_killed')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const probe = new ClickHouseProbe(database)
    const produceHalf = (seed: number) =>
      runIpc([
        'produce',
        '--topic',
        topic,
        '--num-devices',
        '10000',
        '--num-messages',
        '15000',
        '--seed',
        String(seed),
        '--batch',
        '1000',
        '--pause-ms',
        '0',
        '--json',
      ])
    try {
      // A producer gives up on a broker that stays away longer than its retries (exit 3), so
      // events are sent before and after the outage.
      const before = parseJson<ProduceJson>(await produceHalf(42))
      const consumer = startConsumer(topic, database, group, '8s')
      try {
        await waitForChange('the first stored events', () => probe.rows(), 0)
        killKafka('kafka')
        await sleep(15_000)
        await startKafka('kafka')
        const after = parseJson<ProduceJson>(await produceHalf(43))
        const result = await consumer.done
        const consumed = parseJson<ConsumeJson>(result)
        expect(consumed.reason).to.equal('idle')
        expect(result.stderr, 'the Kafka client gave up and was restarted').to.match(/consumer restarting after error/)
        const sent = before.messagesSent + after.messagesSent
        expect(await committedTotal(group, topic)).to.equal(sent)
        const devices = new Set([...generatedDevices(42, 10_000, 15_000), ...generatedDevices(43, 10_000, 15_000)])
        const counted = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database])
        expect(counted.stdout, describeRun(counted)).to.equal(`${devices.size}\n`)
        reportFigure(
          `kill -9 of the broker and a 15 s outage survived ` +
            `(${linesMatching(result.stderr, /consumer restarting after error/).length} client restarts); ` +
            `${sent} events, 0 devices lost`,
        )
      } finally {
        consumer.child.kill('SIGKILL')
      }
    } finally {
      await probe.close()
    }
  })
})

function startConsumer(topic: string, database: string, group: string, untilIdle: string): RunningCli {
  const flags = {'--batch-size': '1000', '--flush-interval': '300ms', '--session-timeout': '6s', '--until-idle': untilIdle, '--kafka-log-level': 'warn'}
  return startIpc(clickhouseConsumeArgs(topic, database, group, flags), {timeoutMs: 150_000})
}
