import {expect} from 'chai'
import {committedTotal, createTopic} from '../support/kafka.js'
import {type RunningCli, runIpc, startIpc, waitFor} from '../support/cli.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {clickhouseConsumeArgs, ClickHouseProbe, describeRun, generatedDevices, linesMatching, produce, reportFigure} from '../support/runs.js'

/** Graceful and forced stops while a ClickHouse batch sits in the consumer's buffer. */

function lastProcessed(consumer: RunningCli): number | undefined {
  const match = /processed ([\d,]+)/.exec(linesMatching(consumer.stdout(), /^Total devices: /).at(-1) ?? '')
  return match ? Number(match[1].replaceAll(',', '')) : undefined
}

async function waitUntilProcessed(consumer: RunningCli, count: number): Promise<void> {
  await waitFor(`${count} events processed`, () => (lastProcessed(consumer) === count ? true : undefined), 60_000)
}

describe('reliability: shutdown under load', function () {
  this.timeout(180_000)

  const probes: ClickHouseProbe[] = []
  const links: CuttableLink[] = []

  afterEach(async () => {
    await Promise.all(probes.splice(0).map((probe) => probe.close()))
    await Promise.all(links.splice(0).map((link) => link.stop()))
  })

  function consumeArgs(topic: string, database: string, group: string, clickhouseUrl = serviceUrls().clickhouseUrl): string[] {
    return clickhouseConsumeArgs(
      topic,
      database,
      group,
      {'--clickhouse-url': clickhouseUrl, '--report-interval': '200ms', '--session-timeout': '4s'},
      {json: false},
    )
  }

  it('SIGTERM while a batch is buffered: the batch is inserted and committed before a clean exit 0', async () => {
    const topic = uniqueName('sigterm')
    const database = uniqueName('ipc_sigterm')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const produced = await produce(topic, {'--num-devices': '5000', '--num-messages': '20000', '--seed': '51'})
    const probe = new ClickHouseProbe(database)
    probes.push(probe)
    const consumer = startIpc([...consumeArgs(topic, database, group), '--batch-size', '1000000', '--flush-interval', '1h'])
    try {
      await waitUntilProcessed(consumer, produced.messagesSent)
      // Everything read, nothing written yet: so nothing may be committed yet either.
      expect(await probe.rows(), 'still buffered').to.equal(0)
      expect(await committedTotal(group, topic), 'nothing committed before the insert').to.equal(0)
      consumer.child.kill('SIGTERM')
      const result = await consumer.done
      expect(result.code, describeRun(result)).to.equal(0)
      expect(result.stderr).to.include('stopping: flushing and committing')
      expect(result.stdout).to.include('stopped by: signal')
      expect(await probe.rows(), 'the buffered batch was inserted').to.equal(produced.messagesSent)
      expect(await committedTotal(group, topic), 'and committed').to.equal(produced.messagesSent)
      expect(await probe.distinctDevices()).to.equal(produced.distinctDevices)
      reportFigure(`SIGTERM with ${produced.messagesSent} events buffered: all inserted and committed, exit 0`)
    } finally {
      consumer.child.kill('SIGKILL')
    }
  })

  it('a second SIGTERM during a stuck final flush exits 130 at once, leaving offsets at what was durable; the next run completes the count', async () => {
    const topic = uniqueName('sigterm2')
    const database = uniqueName('ipc_sigterm2')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const probe = new ClickHouseProbe(database)
    probes.push(probe)
    const link = await CuttableLink.forUrl(serviceUrls().clickhouseUrl, 8123).start()
    links.push(link)
    // Full batches of 1,000 are inserted (and committed) at once; the last partial one stays buffered.
    const first = await produce(topic, {'--num-devices': '3000', '--num-messages': '4000', '--seed': '52'})
    const consumer = startIpc([
      ...consumeArgs(topic, database, group, link.urlFor(serviceUrls().clickhouseUrl)),
      '--batch-size',
      '1000',
      '--flush-interval',
      '1h',
    ])
    try {
      await waitFor(
        'the full batches inserted and committed',
        async () => ((await committedTotal(group, topic)) === first.messagesSent ? true : undefined),
        60_000,
        200,
      )
      const second = await produce(topic, {'--num-devices': '3000', '--num-messages': '500', '--seed': '53'})
      await waitUntilProcessed(consumer, first.messagesSent + second.messagesSent)
      const durableRows = await probe.rows()
      expect(durableRows).to.equal(first.messagesSent)
      // ClickHouse becomes unreachable: the final flush retries (no --max-retry-time) and cannot finish.
      link.cut()
      consumer.child.kill('SIGTERM')
      await waitFor('the first signal taken', () => (consumer.stderr().includes('stopping: flushing and committing') ? true : undefined), 10_000)
      await waitFor('the final flush failing', () => (/retrying/.test(consumer.stderr()) ? true : undefined), 20_000)
      consumer.child.kill('SIGTERM')
      const result = await consumer.done
      expect(result.code, describeRun(result)).to.equal(130)
      expect(result.stderr).to.include('second signal, exiting without committing')
      expect(await committedTotal(group, topic), 'offsets not advanced past what was durable').to.equal(first.messagesSent)
      expect(await probe.rows()).to.equal(durableRows)

      const rerun = await runIpc([...consumeArgs(topic, database, group), '--until-idle', '3s'])
      expect(rerun.code, describeRun(rerun)).to.equal(0)
      expect(await committedTotal(group, topic)).to.equal(first.messagesSent + second.messagesSent)
      const devices = new Set([...generatedDevices(52, 3000, 4000), ...generatedDevices(53, 3000, 500)])
      const counted = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database])
      expect(counted.stdout).to.equal(`${devices.size}\n`)
      expect(await probe.rows()).to.equal(first.messagesSent + second.messagesSent)
      reportFigure('second SIGTERM during a stuck flush: exit 130, offsets left at the last durable batch, nothing lost on rerun')
    } finally {
      consumer.child.kill('SIGKILL')
    }
  })
})
