import {createClient} from '@redis/client'
import {expect} from 'chai'
import {Partitioners} from 'kafkajs'
import type {Browser, Page} from 'playwright-core'
import type {GroupLagJson} from '../../src/kafka/group-lag.js'
import type {PipelineJson} from '../../src/http/pipeline-status.js'
import {launchChromium} from '../support/browser.js'
import {runIpc, type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {createTopic, kafkaAdminClient} from '../support/kafka.js'
import {parseJson, redisConsumeArgs} from '../support/runs.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {redisUrl, serviceUrls, uniqueName} from '../support/services.js'
import {closedPort} from '../support/tcp-proxy.js'

/** `count` events from devices `first`… (one each), spread over the topic's partitions by key. */
async function send(topic: string, first: number, count: number): Promise<void> {
  const producer = kafkaAdminClient().producer({createPartitioner: Partitioners.DefaultPartitioner})
  await producer.connect()
  try {
    const messages = Array.from({length: count}, (_, index) => {
      const device = `10.78.${(first + index) >> 8}.${(first + index) & 255}`
      return {key: device, value: JSON.stringify({timestamp: new Date().toISOString(), device_ip: device, error_code: 0})}
    })
    await producer.send({topic, messages})
  } finally {
    await producer.disconnect()
  }
}

/** What the page shows about the pipeline, read from the DOM. */
async function shown(page: Page) {
  const attribute = (selector: string, name: string) => page.locator(selector).getAttribute(name)
  const text = (selector: string) => page.locator(selector).textContent()
  const [lagState, lag, lagText, lagNote, partitions, freshnessState, freshnessLabel, freshnessAt, freshnessNote] = await Promise.all([
    attribute('#lag', 'data-state'),
    attribute('#lag-total', 'data-lag'),
    text('#lag-total'),
    text('#lag-note'),
    page
      .locator('#lag-partitions tbody tr')
      .evaluateAll((rows) => rows.map((row) => [Number(row.getAttribute('data-partition')), Number(row.getAttribute('data-lag'))])),
    attribute('#freshness', 'data-state'),
    text('#freshness-label'),
    attribute('#freshness-age', 'data-at'),
    text('#freshness-note'),
  ])
  return {lagState, lag, lagText, lagNote, partitions, freshnessState, freshnessLabel, freshnessAt, freshnessNote}
}

type Shown = Awaited<ReturnType<typeof shown>>

/**
 * The pipeline card of the dashboard in headless Chromium: a real `ipc serve --group` over Kafka
 * and Redis, a real `ipc consume` that runs and then stops, and the lag climbing on the page as
 * events arrive with no consumer; then a serve whose Kafka and backend cannot be reached.
 */
describe('ipc serve: lag and freshness on the dashboard (Kafka → ipc consume → Redis, Chromium)', function () {
  this.timeout(120_000)
  const PARTITIONS = 3
  const topic = uniqueName('dash_pipeline')
  const group = uniqueName('g_dash_pipeline')
  const key = uniqueName('ipc_dash_pipeline')
  let browser: Browser
  let page: Page
  let serve: RunningServe
  let consumer: RunningCli | undefined
  let lastWriteShown: string | null | undefined

  /** Polls the page until `check` holds, then returns what it showed. */
  const pageShows = (what: string, check: (state: Shown) => boolean): Promise<Shown> =>
    waitFor(
      what,
      async () => {
        const state = await shown(page)
        return check(state) ? state : undefined
      },
      30_000,
      100,
    )

  const ipcLag = async (): Promise<GroupLagJson> => parseJson<GroupLagJson>(await runIpc(['lag', '--group', group, '--topic', topic, '--json']))

  before(async () => {
    await createTopic(topic, PARTITIONS)
    await send(topic, 0, 400)
    serve = await startServe(['--backend', 'redis', '--redis-key', key, '--cache', '0', '--dashboard-refresh', '500ms', '--group', group, '--topic', topic])
    browser = await launchChromium()
    page = await browser.newPage({viewport: {width: 1100, height: 900}})
  })

  after(async () => {
    consumer?.child.kill('SIGTERM')
    await consumer?.done
    await browser?.close()
    await serve?.stop()
    const client = createClient({url: redisUrl()})
    await client.connect()
    try {
      await client.del([key, ...(await client.keys(`{${key}}:*`))])
    } finally {
      await client.close()
    }
  })

  it('before any consumer: the group is not known yet and there is no data', async () => {
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(error.message))
    await page.goto(`${serve.url}/`)
    const state = await pageShows('the page to say the group is unknown', (seen) => seen.lagState === 'unknown' && seen.freshnessState === 'empty')
    expect(state.lagNote).to.equal(
      `No consumer group ${group} at ${serviceUrls().kafkaBrokers.join(',')}, topic ${topic} yet: it appears once ipc consume has joined it.`,
    )
    expect(state.freshnessLabel).to.equal('Last write')
    expect(state.freshnessNote).to.equal('No data yet: nothing stored in redis.')
    expect(problems, 'errors in the page').to.deep.equal([])
  })

  it('while ipc consume runs: lag 0 on every partition, and the time of the last write', async () => {
    consumer = startIpc(redisConsumeArgs(topic, key, group, {}, {json: false}))
    const state = await pageShows(
      'the page to show the consumer caught up',
      (seen) => seen.lagState === 'ok' && seen.lag === '0' && seen.freshnessState === 'ok',
    )
    expect(state.partitions).to.deep.equal([0, 1, 2].map((partition) => [partition, 0]))
    expect(state.lagNote).to.equal(`group ${group} · 1 consumer · ${PARTITIONS} partitions`)
    expect(Date.parse(state.freshnessAt!), 'the last write is recent').to.be.within(Date.now() - 60_000, Date.now())
  })

  it('once the consumer stops, the lag climbs with every event produced, as ipc lag reads it, and the last write stays', async () => {
    consumer!.child.kill('SIGTERM')
    expect((await consumer!.done).code).to.equal(0)
    consumer = undefined
    const idle = await pageShows('the page to show no consumer', (seen) => seen.lagState === 'idle')
    lastWriteShown = idle.freshnessAt
    await send(topic, 400, 150)
    const first = await pageShows('the lag to reach 150', (seen) => seen.lag === '150')
    expect(first.lagState).to.equal('stopped')
    expect(first.lagNote).to.match(new RegExp(`^No consumer is running in group ${group}: the lag grows`))
    await send(topic, 550, 150)
    const second = await pageShows('the lag to reach 300', (seen) => seen.lag === '300')
    expect(second.lagText).to.equal('300')
    const lag = await ipcLag()
    expect(lag.totalLag).to.equal(300)
    expect(second.partitions).to.deep.equal(lag.partitions.map((partition) => [partition.partition, partition.lag]))
    expect(second.freshnessAt, 'no write since the consumer stopped').to.equal(lastWriteShown)
  })

  it('says Kafka is unreachable and the backend down when neither answers, on the page and in GET /pipeline', async () => {
    const [kafkaPort, redisPort] = [await closedPort(), await closedPort()]
    const dead = await startServe([
      ...['--backend', 'redis', '--redis-url', `redis://user:s3cret@127.0.0.1:${redisPort}`, '--redis-key', key],
      ...['--group', group, '--brokers', `127.0.0.1:${kafkaPort}`, '--lag-timeout', '1s', '--backend-timeout', '500ms', '--dashboard-refresh', '500ms'],
    ])
    try {
      const answer = (await (await fetch(`${dead.url}/pipeline`)).json()) as PipelineJson
      expect(answer.lag).to.include({state: 'kafka-unreachable', group, brokers: `127.0.0.1:${kafkaPort}`})
      expect(answer.freshness).to.include({state: 'backend-down', backend: 'redis', location: `redis://127.0.0.1:${redisPort}`})
      expect(JSON.stringify(answer)).not.to.contain('s3cret')
      const other = await browser.newPage()
      try {
        await other.goto(`${dead.url}/`)
        page = other
        const state = await pageShows('the page to say Kafka and the backend are down', (seen) => seen.lagState === 'down' && seen.freshnessState === 'down')
        expect(state.lagNote).to.match(new RegExp(`^Kafka unreachable at 127\\.0\\.0\\.1:${kafkaPort} — `))
        expect(state.freshnessNote).to.match(new RegExp(`^Backend down: redis at redis://127\\.0\\.0\\.1:${redisPort} — `))
        expect(state.lagText).to.equal('—')
      } finally {
        await other.close()
      }
    } finally {
      await dead.stop()
    }
  })
})
