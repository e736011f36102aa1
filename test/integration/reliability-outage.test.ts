import {expect} from 'chai'
import {committedTotal, createTopic} from '../support/kafka.js'
import {type RunningCli, runIpc, startIpc, waitFor} from '../support/cli.js'
import {redisCount, serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {
  clickhouseConsumeArgs,
  ClickHouseProbe,
  describeRun,
  linesMatching,
  parseJson,
  produce,
  type ProduceJson,
  reportFigure,
  samplePeakRss,
  sleep,
  startProduce,
  waitForChange,
} from './reliability-helpers.js'

/**
 * The backend goes away while events flow: the consumer points at a TCP relay in front of the real
 * Redis or ClickHouse, and the test cuts the relay (the shared services keep running).
 */

const SESSION_TIMEOUT_MS = 4000

/** `processed N` from the last "Total devices: …" report line on stdout. */
function lastProcessed(stdout: string): number | undefined {
  const lines = linesMatching(stdout, /^Total devices: /)
  const match = /processed ([\d,]+)/.exec(lines.at(-1) ?? '')
  return match ? Number(match[1].replaceAll(',', '')) : undefined
}

function retryLines(consumer: RunningCli): string[] {
  return linesMatching(consumer.stderr(), /retrying/)
}

describe('reliability: backend outages', function () {
  this.timeout(180_000)

  const links: CuttableLink[] = []
  const probes: ClickHouseProbe[] = []

  afterEach(async () => {
    await Promise.all(links.splice(0).map((link) => link.stop()))
    await Promise.all(probes.splice(0).map((probe) => probe.close()))
  })

  async function relayTo(serviceUrl: string, defaultPort: number): Promise<{link: CuttableLink; url: string}> {
    const link = await CuttableLink.forUrl(serviceUrl, defaultPort).start()
    links.push(link)
    return {link, url: link.urlFor(serviceUrl)}
  }

  function probe(database: string): ClickHouseProbe {
    const created = new ClickHouseProbe(database)
    probes.push(created)
    return created
  }

  for (const backend of ['clickhouse', 'redis'] as const) {
    it(`${backend}: a 9 s outage mid-stream pauses fetching, commits nothing, keeps the member in its group, and catches up`, async () => {
      const topic = uniqueName(`outage_${backend}`)
      const group = uniqueName('g')
      const database = uniqueName('ipc_outage')
      const redisKey = uniqueName('ipc:outage')
      await createTopic(topic, 4)
      const relay = backend === 'clickhouse' ? await relayTo(serviceUrls().clickhouseUrl, 8123) : await relayTo(serviceUrls().redisUrl, 6379)
      const backendArgs =
        backend === 'clickhouse' ? ['--clickhouse-url', relay.url, '--clickhouse-database', database] : ['--redis-url', relay.url, '--redis-key', redisKey]
      const clickhouse = probe(database)
      const stored = backend === 'clickhouse' ? () => clickhouse.rows() : () => redisCount(redisKey)

      // ~14 s of events; the outage starts with the first stored events and lasts 12 s.
      const producer = startProduce(topic, {'--num-devices': '20000', '--num-messages': '40000', '--seed': '31', '--batch': '200', '--pause-ms': '60'})
      const consumer = startIpc(
        [
          'consume',
          '--topic',
          topic,
          '--backend',
          backend,
          ...backendArgs,
          '--group',
          group,
          '--from-beginning',
          '--batch-size',
          '1000',
          '--flush-interval',
          '500ms',
          '--session-timeout',
          `${SESSION_TIMEOUT_MS}ms`,
          '--report-interval',
          '500ms',
          '--until-idle',
          '4s',
          '--kafka-log-level',
          'info',
        ],
        {timeoutMs: 150_000},
      )
      const rss = samplePeakRss(consumer)
      try {
        await waitForChange('the first stored events', stored, 0)
        relay.link.cut()
        const cutAt = Date.now()
        await waitFor('two reported write failures', () => (retryLines(consumer).length >= 2 ? true : undefined), 30_000)
        const committedAtCut = await committedTotal(group, topic)
        const storedAtCut = await stored()
        await sleep(4000)
        const processedDuringOutage = lastProcessed(consumer.stdout())
        await sleep(4000)
        const processedLater = lastProcessed(consumer.stdout())
        const committedLater = await committedTotal(group, topic)
        const outageMs = Date.now() - cutAt
        const retriesDuringOutage = retryLines(consumer).length
        relay.link.restore()

        const result = await consumer.done
        const produced = parseJson<ProduceJson>(await producer.done)
        expect(result.code, describeRun(result)).to.equal(0)

        expect(committedLater, 'nothing committed while the backend is down').to.equal(committedAtCut)
        if (backend === 'clickhouse') expect(committedAtCut, 'commits never run ahead of stored rows').to.be.at.most(storedAtCut)
        expect(processedDuringOutage, 'report lines while the backend is down').to.be.a('number')
        expect(processedLater, 'fetching paused: no more events processed').to.equal(processedDuringOutage)
        expect(processedLater, 'paused before the end of the stream').to.be.below(produced.messagesSent)
        // The dev broker has no DescribeGroups; kafkajs logs every (re)join at info level instead.
        expect(
          linesMatching(result.stderr, /Consumer has joined the group/),
          `one group join, no rejoin after an outage of ${(outageMs / SESSION_TIMEOUT_MS).toFixed(1)}× the session timeout`,
        ).to.have.length(1)
        expect(retriesDuringOutage, 'retries with capped exponential backoff, not a tight loop').to.be.within(3, 15)
        expect(result.stderr).to.match(new RegExp(`${backend}: writes are failing; retrying with backoff`))
        expect(result.stderr).to.match(new RegExp(`${backend}: writing again after`))
        expect(result.stderr, 'the consumer never left or rejoined its group').to.not.match(/rebalanc|rejoin/i)

        expect(await committedTotal(group, topic), 'everything committed at the end').to.equal(produced.messagesSent)
        if (backend === 'clickhouse') {
          expect(await clickhouse.distinctDevices()).to.equal(produced.distinctDevices)
        } else {
          const estimate = await redisCount(redisKey)
          expect(Math.abs(estimate - produced.distinctDevices) / produced.distinctDevices).to.be.below(0.02)
        }
        const peakMiB = rss.stop()
        reportFigure(
          `${backend}: ${(outageMs / 1000).toFixed(0)} s outage survived (${retriesDuringOutage} failed ` +
            `attempts, fetching paused at ${processedLater} of ${produced.messagesSent} events); consumer peak ` +
            `RSS ${peakMiB.toFixed(0)} MiB`,
        )
      } finally {
        rss.stop()
        consumer.child.kill('SIGKILL')
        producer.child.kill('SIGKILL')
      }
    })
  }

  for (const backend of ['clickhouse', 'redis'] as const) {
    it(`${backend}: an outage longer than --max-retry-time ends the run with exit 3 and one error line, the unwritten events uncommitted`, async () => {
      const topic = uniqueName(`giveup_${backend}`)
      const group = uniqueName('g')
      const database = uniqueName('ipc_giveup')
      const redisKey = uniqueName('ipc:giveup')
      await createTopic(topic, 4)
      const relay = backend === 'clickhouse' ? await relayTo(serviceUrls().clickhouseUrl, 8123) : await relayTo(serviceUrls().redisUrl, 6379)
      const clickhouse = probe(database)
      const stored = backend === 'clickhouse' ? () => clickhouse.rows() : () => redisCount(redisKey)
      const args = (url?: string) =>
        backend === 'clickhouse'
          ? ['--clickhouse-database', database, ...(url ? ['--clickhouse-url', url] : [])]
          : ['--redis-key', redisKey, ...(url ? ['--redis-url', url] : [])]

      const producer = startProduce(topic, {'--num-devices': '10000', '--num-messages': '20000', '--seed': '32', '--batch': '200', '--pause-ms': '50'})
      const consumer = startIpc(
        [
          'consume',
          '--topic',
          topic,
          '--backend',
          backend,
          ...args(relay.url),
          '--group',
          group,
          '--from-beginning',
          '--batch-size',
          '500',
          '--flush-interval',
          '300ms',
          '--session-timeout',
          `${SESSION_TIMEOUT_MS}ms`,
        ],
        {env: {IPC_MAX_RETRY_TIME: '3s'}, timeoutMs: 120_000},
      )
      try {
        await waitForChange('the first stored events', stored, 0)
        relay.link.cut()
        const result = await consumer.done
        expect(result.code, describeRun(result)).to.equal(3)
        const errorLines = linesMatching(result.stderr, /^ipc consume: /)
        expect(errorLines, result.stderr).to.have.length(1)
        expect(errorLines[0], errorLines[0]).to.match(
          new RegExp(`^ipc consume: gave up after --max-retry-time 3(\\.0)?s: ${backend} did not take the events of ${topic}\\[\\d\\]`),
        )
        expect(errorLines[0]).to.include('offsets from there on stay uncommitted')
        expect(result.stdout, 'no summary after a failure').to.not.match(/Total devices/)

        const produced = parseJson<ProduceJson>(await producer.done)
        const committed = await committedTotal(group, topic)
        expect(committed, 'the unwritten events are not committed').to.be.below(produced.messagesSent)
        if (backend === 'clickhouse') expect(committed, 'every committed event is stored').to.be.at.most(await stored())

        // The next run, with the backend reachable, reads the uncommitted events again.
        const final = await runIpc([
          'consume',
          '--topic',
          topic,
          '--backend',
          backend,
          ...args(),
          '--group',
          group,
          '--from-beginning',
          '--until-idle',
          '2s',
          '--session-timeout',
          `${SESSION_TIMEOUT_MS}ms`,
        ])
        expect(final.code, describeRun(final)).to.equal(0)
        if (backend === 'clickhouse') {
          expect(await clickhouse.distinctDevices()).to.equal(produced.distinctDevices)
        } else {
          const estimate = await redisCount(redisKey)
          expect(Math.abs(estimate - produced.distinctDevices) / produced.distinctDevices).to.be.below(0.02)
        }
        reportFigure(
          `${backend}: gave up after --max-retry-time 3s with ${committed} of ${produced.messagesSent} events committed; the next run completed the count`,
        )
      } finally {
        consumer.child.kill('SIGKILL')
        producer.child.kill('SIGKILL')
      }
    })
  }

  /**
   * A ClickHouse consumer behind a relay that has every event of a fresh topic buffered (a batch size
   * it never reaches) and nothing inserted yet, its flush timer set to `flushInterval`.
   */
  async function consumerWithEverythingBuffered(name: string, seed: string, flushInterval: string) {
    const topic = uniqueName(name)
    const group = uniqueName('g')
    const database = uniqueName(`ipc_${name}`)
    await createTopic(topic, 2)
    const produced = await produce(topic, {'--num-devices': '500', '--num-messages': '2000', '--seed': seed})
    const relay = await relayTo(serviceUrls().clickhouseUrl, 8123)
    const consumer = startIpc(
      clickhouseConsumeArgs(
        topic,
        database,
        group,
        {'--clickhouse-url': relay.url, '--batch-size': '1000000', '--flush-interval': flushInterval, '--max-retry-time': '2s', '--report-interval': '200ms'},
        {json: false},
      ),
      {timeoutMs: 60_000},
    )
    try {
      await waitFor('all events buffered', () => (lastProcessed(consumer.stdout()) === produced.messagesSent ? true : undefined), 30_000)
    } catch (error) {
      consumer.child.kill('SIGKILL')
      throw error
    }
    return {topic, group, database, relay, consumer}
  }

  it('clickhouse: a timed flush that fails on an idle stream ends the run after --max-retry-time with exit 3, without waiting for another event', async () => {
    const {topic, group, relay, consumer} = await consumerWithEverythingBuffered('idlegiveup', '34', '2s')
    try {
      // Nothing more arrives: only the flush timer writes, and its give-up alone must end the run.
      relay.link.cut()
      const result = await consumer.done
      expect(result.code, describeRun(result)).to.equal(3)
      const errorLines = linesMatching(result.stderr, /^ipc consume: /)
      expect(errorLines, result.stderr).to.have.length(1)
      expect(errorLines[0]).to.match(/gave up after --max-retry-time 2(\.0)?s: clickhouse did not take the events of .*offsets from there on stay uncommitted/)
      expect(await committedTotal(group, topic)).to.equal(0)
    } finally {
      consumer.child.kill('SIGKILL')
    }
  })

  it('clickhouse: a final flush that keeps failing at shutdown ends after --max-retry-time with exit 3, nothing committed', async () => {
    const {topic, group, database, relay, consumer} = await consumerWithEverythingBuffered('stopflush', '33', '1h')
    try {
      relay.link.cut()
      consumer.child.kill('SIGTERM')
      const result = await consumer.done
      expect(result.code, describeRun(result)).to.equal(3)
      expect(linesMatching(result.stderr, /^ipc consume: /).at(-1)).to.match(/final flush failed, offsets of the unwritten events left uncommitted/)
      expect(await committedTotal(group, topic)).to.equal(0)
      expect(await probe(database).rows()).to.equal(0)
    } finally {
      consumer.child.kill('SIGKILL')
    }
  })
})
