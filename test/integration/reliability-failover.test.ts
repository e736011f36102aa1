import {expect} from 'chai'
import {startIpc, waitFor} from '../support/cli.js'
import {createTopic, killKafka, partitionLeaders, servicesCommand} from '../support/kafka.js'
import {parseServicesEnv} from '../support/global.js'
import {uniqueName} from '../support/services.js'
import {
  clickhouseConsumeArgs,
  ClickHouseProbe,
  type ConsumeJson,
  expectEverythingCounted,
  linesMatching,
  parseJson,
  type ProduceJson,
  reportFigure,
  startProduce,
  waitForChange,
} from './reliability-helpers.js'

/**
 * Failover on the three-node Kafka cluster (replication factor 3, min.insync.replicas=2), started
 * for this file with `scripts/services up kafka-cluster`: the leader of the partitions being
 * consumed is killed with kill -9 while `ipc produce` and `ipc consume` run.
 */
describe('reliability: failover on a three-node Kafka cluster', function () {
  this.timeout(240_000)
  let brokers: string[] = []
  let startedCluster = false

  before(async function () {
    this.timeout(180_000)
    const running = await servicesCommand('status').catch((error: Error) => error.message)
    startedCluster = !/^kafka-cluster\s+running/m.test(running)
    await servicesCommand('up', 'kafka-cluster')
    brokers = parseServicesEnv(await servicesCommand('env')).DEV_KAFKA_CLUSTER_BROKERS?.split(',') ?? []
    expect(brokers, 'scripts/services env gives the cluster').to.have.lengthOf(3)
  })

  after(async function () {
    this.timeout(60_000)
    if (startedCluster) await servicesCommand('down', 'kafka-cluster')
  })

  it('kill -9 of the leader mid-stream: leadership moves, producer and consumer carry on, nothing is lost', async () => {
    const topic = uniqueName('failover')
    const database = uniqueName('ipc_failover')
    const group = uniqueName('g')
    const brokerList = brokers.join(',')
    await createTopic(topic, 4, {brokers, replication: 3})
    const probe = new ClickHouseProbe(database)
    const producer = startProduce(topic, {
      '--brokers': brokerList,
      '--num-devices': '20000',
      '--num-messages': '40000',
      '--seed': '51',
      '--batch': '200',
      '--pause-ms': '50',
      '--kafka-log-level': 'warn',
    })
    const flags = {
      '--brokers': brokerList,
      '--batch-size': '1000',
      '--flush-interval': '300ms',
      '--session-timeout': '6s',
      '--until-idle': '20s',
      '--kafka-log-level': 'warn',
    }
    const consumer = startIpc(clickhouseConsumeArgs(topic, database, group, flags), {timeoutMs: 200_000})
    try {
      // The producer stalls until the dead node's partitions have new leaders (its session expires
      // after 6 s on the test cluster); --until-idle 20s keeps the caught-up consumer waiting for it.
      await waitForChange('the first stored events', () => probe.rows(), 0)
      const leaders = await partitionLeaders(topic, brokers)
      const counts = new Map<number, number>()
      for (const leader of leaders.values()) counts.set(leader, (counts.get(leader) ?? 0) + 1)
      const victim = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0]
      killKafka(`kafka-cluster-${victim}`)
      const survivors = brokers.filter((_, index) => index + 1 !== victim)
      const moved = await waitFor(
        'leadership to move off the killed node',
        async () => {
          const now = await partitionLeaders(topic, survivors).catch(() => undefined)
          return now && [...now.values()].every((leader) => leader !== victim && leader >= 0) ? now : undefined
        },
        60_000,
        500,
      )
      const [producerResult, consumerResult] = await Promise.all([producer.done, consumer.done])
      const produced = parseJson<ProduceJson>(producerResult)
      const consumed = parseJson<ConsumeJson>(consumerResult)
      expect(produced.messagesSent).to.equal(40_000)
      expect(consumed.reason).to.equal('idle')
      await expectEverythingCounted(probe, database, group, topic, produced, survivors)
      reportFigure(
        `leader (node ${victim}, ${counts.get(victim)} of 4 partitions) killed mid-stream; leaders now ${JSON.stringify([...moved.entries()])}; ` +
          `producer logged ${linesMatching(producerResult.stderr, /^kafka (error|warn)/).length} Kafka ` +
          `errors/warnings; ${produced.messagesSent} events, 0 devices lost`,
      )
    } finally {
      producer.child.kill('SIGKILL')
      consumer.child.kill('SIGKILL')
      await probe.close()
      await servicesCommand('up', 'kafka-cluster')
    }
  })
})
