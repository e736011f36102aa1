import {expect} from 'chai'
import {committedTotal, createTopic} from '../support/kafka.js'
import {type RunningCli, runIpc, startIpc, waitFor} from '../support/cli.js'
import {redisCount, serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {
  clickhouseConsumeArgs,
  ClickHouseProbe,
  consumeArgs,
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
} from '../support/runs.js'

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

type Backend = 'clickhouse' | 'redis'

/** Two writes failing, then 8 s with the backend cut: what was committed, stored and processed meanwhile. */
interface OutageObservation {
  committedAtCut: number
  storedAtCut: number
  processedDuringOutage: number | undefined
  processedLater: number | undefined
  committedLater: number
  outageMs: number
  retriesDuringOutage: number
}

interface OutageSetup {
  topic: string
  group: string
  redisKey: string
  relay: {link: CuttableLink; url: string}
  clickhouse: ClickHouseProbe
  /** What grows when the consumer stored something. */
  stored: () => Promise<number>
  /** Consume flags for the backend, through `url` when given. */
  backendFlags: (url?: string) => Record<string, string>
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

  /**
   * A fresh topic and group, a relay in front of `backend`, and what a consumer of it stores: rows of
   * the ClickHouse database or the Redis key's count.
   */
  async function outageSetup(backend: Backend, name: string): Promise<OutageSetup> {
    const topic = uniqueName(`${name}_${backend}`)
    const group = uniqueName('g')
    const database = uniqueName(`ipc_${name}`)
    const redisKey = uniqueName(`ipc:${name}`)
    await createTopic(topic, 4)
    const relay = backend === 'clickhouse' ? await relayTo(serviceUrls().clickhouseUrl, 8123) : await relayTo(serviceUrls().redisUrl, 6379)
    const clickhouse = probe(database)
    const stored = backend === 'clickhouse' ? () => clickhouse.rows() : () => redisCount(redisKey)
    const backendFlags = (url?: string): Record<string, string> =>
      backend === 'clickhouse'
        ? {'--backend': backend, '--clickhouse-database': database, ...(url ? {'--clickhouse-url': url} : {})}
        : {'--backend': backend, '--redis-key': redisKey, ...(url ? {'--redis-url': url} : {})}
    return {topic, group, redisKey, relay, clickhouse, stored, backendFlags}
  }

  /** Cuts the relay, watches the consumer for 8 s after its second failed write, and restores the relay. */
  async function observeOutage(
    consumer: RunningCli,
    {relay, group, topic, stored}: Pick<OutageSetup, 'relay' | 'group' | 'topic' | 'stored'>,
  ): Promise<OutageObservation> {
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
    return {committedAtCut, storedAtCut, processedDuringOutage, processedLater, committedLater, outageMs, retriesDuringOutage}
  }

  /** ClickHouse holds exactly the producer's devices; Redis's HyperLogLog is within 2 % of them. */
  async function expectDevicesCounted(backend: Backend, clickhouse: ClickHouseProbe, redisKey: string, produced: ProduceJson): Promise<void> {
    if (backend === 'clickhouse') {
      expect(await clickhouse.distinctDevices()).to.equal(produced.distinctDevices)
    } else {
      const estimate = await redisCount(redisKey)
      expect(Math.abs(estimate - produced.distinctDevices) / produced.distinctDevices).to.be.below(0.02)
    }
  }

  for (const backend of ['clickhouse', 'redis'] as const) {
    it(`${backend}: a 9 s outage mid-stream pauses fetching, commits nothing, keeps the member in its group, and catches up`, async () => {
      // Given ~14 s of paced events and a consumer writing through a relay;
      // when the relay is cut at the first stored events, and restored 8 s after the second failed write;
      // then nothing is committed during the cut (and, for ClickHouse, no more than was stored),
      // fetching pauses before the end of the stream, the member joins its group once and never
      // rejoins, it retries 3–15 times with backoff and says when writing works again, and in the
      // end everything is committed and the devices counted.
      const setup = await outageSetup(backend, 'outage')
      const {topic, group, redisKey, relay, clickhouse, stored, backendFlags} = setup
      const producer = startProduce(topic, {'--num-devices': '20000', '--num-messages': '40000', '--seed': '31', '--batch': '200', '--pause-ms': '60'})
      const consumer = startIpc(
        consumeArgs(
          topic,
          group,
          {
            ...backendFlags(relay.url),
            '--batch-size': '1000',
            '--flush-interval': '500ms',
            '--session-timeout': `${SESSION_TIMEOUT_MS}ms`,
            '--report-interval': '500ms',
            '--until-idle': '4s',
            '--kafka-log-level': 'info',
          },
          {json: false},
        ),
        {timeoutMs: 150_000},
      )
      const rss = samplePeakRss(consumer)
      try {
        await waitForChange('the first stored events', stored, 0)
        const {committedAtCut, storedAtCut, processedDuringOutage, processedLater, committedLater, outageMs, retriesDuringOutage} = await observeOutage(
          consumer,
          setup,
        )

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
        await expectDevicesCounted(backend, clickhouse, redisKey, produced)
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
      // Given paced events and a consumer writing through a relay, with IPC_MAX_RETRY_TIME=3s;
      // when the relay is cut at the first stored events and stays cut;
      // then the run exits 3 with one "gave up" line naming the topic and no summary, the unwritten
      // events stay uncommitted (and, for ClickHouse, every committed event is stored), and a next
      // run with the backend reachable counts the devices.
      const {topic, group, redisKey, relay, clickhouse, stored, backendFlags} = await outageSetup(backend, 'giveup')
      const producer = startProduce(topic, {'--num-devices': '10000', '--num-messages': '20000', '--seed': '32', '--batch': '200', '--pause-ms': '50'})
      const consumer = startIpc(
        consumeArgs(
          topic,
          group,
          {...backendFlags(relay.url), '--batch-size': '500', '--flush-interval': '300ms', '--session-timeout': `${SESSION_TIMEOUT_MS}ms`},
          {json: false},
        ),
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
        const final = await runIpc(
          consumeArgs(topic, group, {...backendFlags(), '--until-idle': '2s', '--session-timeout': `${SESSION_TIMEOUT_MS}ms`}, {json: false}),
        )
        expect(final.code, describeRun(final)).to.equal(0)
        await expectDevicesCounted(backend, clickhouse, redisKey, produced)
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
