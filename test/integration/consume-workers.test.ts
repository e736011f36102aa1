import {expect} from 'chai'
import {runIpc, startIpc, waitFor} from '../support/cli.js'
import {committedTotal, createTopic, groupAssignment} from '../support/kafka.js'
import {scrapeMetrics} from '../support/metrics.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {closedPort, CuttableLink} from '../support/tcp-proxy.js'
import {
  ClickHouseProbe,
  clickhouseConsumeArgs,
  type ConsumeJson,
  describeRun,
  expectEverythingCounted,
  generatedDevices,
  linesMatching,
  parseJson,
  produce,
} from '../support/runs.js'

/** `ipc consume --workers N`: N group members in worker threads of one process, against the real services. */
describe('ipc consume --workers', function () {
  this.timeout(240_000)

  it('shares the partitions between the workers, serves one /metrics, and on SIGTERM every worker flushes and commits', async () => {
    const topic = uniqueName('workers')
    const database = uniqueName('ipc_workers')
    const group = uniqueName('g_workers')
    await createTopic(topic, 4)
    const produced = await produce(topic, {'--num-devices': '1500', '--num-messages': '4000', '--seed': '31'})
    const consumer = startIpc(
      clickhouseConsumeArgs(
        topic,
        database,
        group,
        {'--workers': '2', '--metrics-port': '0', '--flush-interval': '1h', '--session-timeout': '6s'},
        {json: false},
      ),
    )
    const probe = new ClickHouseProbe(database)
    try {
      const base = await waitFor('the metrics address on stderr', () => /metrics on (http:\/\/[\d.:]+)\/metrics/.exec(consumer.stderr())?.[1], 30_000)
      const values = await waitFor(
        'every event consumed by the two workers',
        async () => {
          const current = await scrapeMetrics(base)
          return current.get('ipc_consumer_events_total') === produced.messagesSent && current.get('ipc_consumer_assigned_partitions') === 4
            ? current
            : undefined
        },
        90_000,
        250,
      )
      expect(values.get('ipc_consumer_events_valid_total')).to.equal(produced.messagesSent)
      const assignment = await groupAssignment(group, topic)
      expect(assignment.state).to.equal('Stable')
      expect(assignment.partitionsPerMember, 'two members, two partitions each').to.deep.equal([2, 2])
      // --flush-interval 1h: the events wait in the workers' buffers until the stop flushes them.
      expect(await probe.rows()).to.equal(0)
      expect(await committedTotal(group, topic)).to.equal(0)
      expect((await fetch(`${base}/readyz`)).status).to.equal(200)
    } finally {
      consumer.child.kill('SIGTERM')
    }
    const result = await consumer.done
    try {
      expect(result.code, describeRun(result)).to.equal(0)
      expect(linesMatching(result.stdout, /^stopped by: signal$/), 'one summary').to.have.lengthOf(1)
      expect(result.stdout).to.match(new RegExp(`^events processed: ${produced.messagesSent.toLocaleString('en-US')}$`, 'm'))
      expect(result.stdout).to.match(new RegExp(`^total devices: ${produced.distinctDevices.toLocaleString('en-US')}$`, 'm'))
      expect(await committedTotal(group, topic)).to.equal(produced.messagesSent)
      await expectEverythingCounted(probe, database, group, topic, produced)
    } finally {
      await probe.close()
    }
  })

  it('with more workers than partitions, --until-idle stops once every worker is idle', async () => {
    const topic = uniqueName('workers_idle')
    const database = uniqueName('ipc_workers_idle')
    const group = uniqueName('g_workers_idle')
    await createTopic(topic, 2)
    const produced = await produce(topic, {'--num-devices': '700', '--num-messages': '2500', '--seed': '32'})
    const result = await runIpc(clickhouseConsumeArgs(topic, database, group, {'--workers': '3', '--until-idle': '3s', '--session-timeout': '6s'}), {
      timeoutMs: 120_000,
    })
    const summary = parseJson<ConsumeJson>(result)
    expect(summary.reason).to.equal('idle')
    expect(summary.stats.processed).to.equal(produced.messagesSent)
    expect(summary.stats.valid).to.equal(produced.messagesSent)
    expect(summary.totalDevices).to.equal(produced.distinctDevices)
    expect(Object.keys(summary.stats.committed).sort()).to.deep.equal(['0', '1'])
    expect(await committedTotal(group, topic)).to.equal(produced.messagesSent)
  })

  it('a worker whose backend gives up stops the process with exit 3, nothing committed past what was stored', async () => {
    const topic = uniqueName('workers_fail')
    const database = uniqueName('ipc_workers_fail')
    const group = uniqueName('g_workers_fail')
    await createTopic(topic, 4)
    const first = await produce(topic, {'--num-devices': '500', '--num-messages': '2000', '--seed': '33'})
    const link = await CuttableLink.forUrl(serviceUrls().clickhouseUrl, 8123).start()
    const probe = new ClickHouseProbe(database)
    const flags = {'--workers': '2', '--flush-interval': '300ms', '--max-retry-time': '2s', '--backend-timeout': '1s', '--session-timeout': '6s'}
    const consumer = startIpc(
      clickhouseConsumeArgs(topic, database, group, {...flags, '--clickhouse-url': link.urlFor(serviceUrls().clickhouseUrl)}, {json: false}),
    )
    try {
      await waitFor('the first events committed', async () => ((await committedTotal(group, topic)) === first.messagesSent ? true : undefined), 60_000, 250)
      link.cut()
      const second = await produce(topic, {'--num-devices': '500', '--num-messages': '2000', '--seed': '34'})
      const result = await consumer.done
      expect(result.code, describeRun(result)).to.equal(3)
      expect(result.stderr).to.match(/^ipc consume: gave up after --max-retry-time 2(\.0)?s: worker [12] of 2: clickhouse did not take the events of /m)
      const committed = await committedTotal(group, topic)
      expect(committed, 'the second events uncommitted').to.be.below(first.messagesSent + second.messagesSent)
      expect(await probe.rows(), 'every committed event stored').to.be.at.least(committed)

      link.restore()
      const again = await runIpc(clickhouseConsumeArgs(topic, database, group, {'--until-idle': '2s', '--workers': '2'}), {timeoutMs: 120_000})
      expect(parseJson<ConsumeJson>(again).stats.invalid).to.equal(0)
      const devices = new Set([...generatedDevices(33, 500, 2000), ...generatedDevices(34, 500, 2000)])
      await expectEverythingCounted(probe, database, group, topic, {messagesSent: first.messagesSent + second.messagesSent, distinctDevices: devices.size})
    } finally {
      consumer.child.kill('SIGKILL')
      await link.stop()
      await probe.close()
    }
  })

  it('with no broker at the address, exits 3 with one line naming it', async () => {
    const port = await closedPort()
    const result = await runIpc(['consume', '--topic', uniqueName('nobroker'), '--brokers', `127.0.0.1:${port}`, '--workers', '2', '--backend', 'redis'], {
      timeoutMs: 90_000,
    })
    expect(result.code, describeRun(result)).to.equal(3)
    const lines = linesMatching(result.stderr, /^ipc consume: /)
    expect(lines, result.stderr).to.have.lengthOf(1)
    expect(lines[0]).to.match(
      new RegExp(`^ipc consume: worker [12] of 2: no Kafka broker answered at 127\\.0\\.0\\.1:${port} \\(Connection error: connect ECONNREFUSED`),
    )
  })

  it('refuses --workers with the memory backend (exit 2), touching nothing', async () => {
    const result = await runIpc(['consume', '--topic', uniqueName('never'), '--backend', 'memory', '--workers', '2'])
    expect(result.code, describeRun(result)).to.equal(2)
    expect(result.stderr).to.match(/^ipc consume: --workers needs a shared backend/m)
  })
})
