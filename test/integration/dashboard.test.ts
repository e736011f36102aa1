import {expect} from 'chai'
import {Partitioners} from 'kafkajs'
import type {Browser, Page} from 'playwright-core'
import {HOUR_MS} from '../../src/query/count-query.js'
import {launchChromium} from '../support/browser.js'
import {type CliResult, runIpc, waitFor} from '../support/cli.js'
import {createTopic, kafkaAdminClient, servicesCommand} from '../support/kafka.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {clickhouseUrl, uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs} from '../support/runs.js'

interface SentEvent {
  timestampMs: number
  deviceIp: string
  errorCode: number
}

/** `count` devices from `first` on, one event each, spread over the last 20 hours. */
function eventsFor(first: number, count: number, nowMs: number): SentEvent[] {
  return Array.from({length: count}, (_, index) => {
    const device = first + index
    return {
      timestampMs: nowMs - ((device * 2_399_993) % (20 * HOUR_MS)),
      deviceIp: `10.77.${device >> 8}.${device & 255}`,
      errorCode: device % 7,
    }
  })
}

async function send(topic: string, events: readonly SentEvent[]): Promise<void> {
  const producer = kafkaAdminClient().producer({createPartitioner: Partitioners.DefaultPartitioner})
  await producer.connect()
  try {
    const messages = events.map((event) => ({
      key: event.deviceIp,
      value: JSON.stringify({timestamp: new Date(event.timestampMs).toISOString(), device_ip: event.deviceIp, error_code: event.errorCode}),
    }))
    await producer.send({topic, messages})
  } finally {
    await producer.disconnect()
  }
}

function parseJson<T>(result: CliResult): T {
  expect(result.code, result.stderr).to.equal(0)
  return JSON.parse(result.stdout) as T
}

interface CountJson {
  unique_device_ip_count: number
  series?: Array<{bucket: string; count: number}>
}

/**
 * The dashboard of `ipc serve` as a person sees it: Debian's headless Chromium, driven by
 * playwright-core, loads the page from a real `ipc serve` over events that `ipc consume` read from
 * Apache Kafka into ClickHouse, and what the page shows is compared with `ipc count`.
 */
describe('ipc serve: the dashboard page in headless Chromium (Kafka → ipc consume → ClickHouse)', function () {
  this.timeout(180_000)
  const topic = uniqueName('dashboard')
  const group = uniqueName('g_dashboard')
  const database = uniqueName('ipc_test_dashboard')
  const nowMs = Date.now()
  const clickhouseFlags = (): string[] => ['--backend', 'clickhouse', '--clickhouse-url', clickhouseUrl(), '--clickhouse-database', database]
  let browser: Browser
  let page: Page
  let serve: RunningServe
  let baseUrl: string

  const consume = async (): Promise<void> => {
    parseJson(await runIpc(clickhouseConsumeArgs(topic, database, group, {'--until-idle': '3s', '--flush-interval': '1s'})))
  }
  const ipcCount = async (...flags: string[]): Promise<CountJson> => parseJson<CountJson>(await runIpc(['count', ...clickhouseFlags(), '--json', ...flags]))
  const pageCount = async (): Promise<number> => Number(await page.locator('#total').getAttribute('data-count'))
  const pageState = (): Promise<string | null> => page.locator('body').getAttribute('data-state')

  before(async () => {
    await createTopic(topic, 4)
    serve = await startServe([...clickhouseFlags(), '--cache', '0', '--dashboard-refresh', '1s', '--dashboard-error-codes', '0..6'])
    baseUrl = serve.url
    browser = await launchChromium()
    page = await browser.newPage({viewport: {width: 1100, height: 900}})
  })

  after(async () => {
    await browser?.close()
    await serve?.stop()
  })

  it('says "no data yet" while nothing has been consumed', async () => {
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(error.message))
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text())
    })
    await page.goto(`${baseUrl}/`)
    await page.waitForSelector('html[data-loaded]')
    expect(await pageState()).to.equal('empty')
    expect(await page.locator('#state').textContent()).to.match(/^No data yet/)
    expect(await page.locator('#hourly figcaption').textContent()).to.match(/^No data yet/)
    expect(await pageCount()).to.equal(0)
    expect(problems, 'errors in the page').to.deep.equal([])
  })

  it('shows the count of ipc count, one bar per hour and per day with the values of ipc count --by, and devices per error code', async () => {
    const events = eventsFor(0, 3000, nowMs)
    await send(topic, events)
    await consume()
    const expected = (await ipcCount()).unique_device_ip_count
    expect(expected).to.equal(3000)
    await waitFor('the page to show the count', async () => ((await pageCount()) === expected ? true : undefined), 30_000, 200)
    expect((await page.locator('#total').textContent())?.replace(/\D/g, '')).to.equal(String(expected))
    expect(await pageState()).to.equal('ok')
    expect(await page.locator('#state').isVisible()).to.be.false

    for (const [figure, by, buckets] of [
      ['#hourly', 'hour', 24],
      ['#daily', 'day', 30],
    ] as const) {
      await waitFor(`the ${by} chart to show the events`, async () => ((await page.locator(figure).getAttribute('data-state')) === 'ok' ? true : undefined))
      const since = await page.locator(figure).getAttribute('data-since')
      const until = await page.locator(figure).getAttribute('data-until')
      const bars = await page
        .locator(`${figure} rect.bar`)
        .evaluateAll((rects) => rects.map((rect) => ({bucket: rect.getAttribute('data-bucket'), count: Number(rect.getAttribute('data-count'))})))
      const {series} = await ipcCount('--since', since!, '--until', until!, '--by', by)
      expect(bars, `${by} bars`).to.have.lengthOf(buckets)
      expect(bars, `${by} bars against ipc count --by ${by}`).to.deep.equal(series)
      expect(
        bars.reduce((sum, bar) => sum + bar.count, 0),
        'every event in one bucket',
      ).to.equal(3000)
    }
    const hourlyCounts = await page.locator('#hourly rect.bar').evaluateAll((rects) => rects.map((rect) => Number(rect.getAttribute('data-count'))))
    expect(hourlyCounts.filter((count) => count > 0).length, 'hours with events (20 hours of them)').to.be.within(20, 21)

    const rows = await page
      .locator('#codes tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [Number(tr.getAttribute('data-code')), Number(tr.getAttribute('data-count'))]))
    const since = (await page.locator('#hourly').getAttribute('data-since'))!
    const inWindow = events.filter((event) => event.timestampMs >= Date.parse(since))
    expect(rows).to.deep.equal([0, 1, 2, 3, 4, 5, 6].map((code) => [code, inWindow.filter((event) => event.errorCode === code).length]))
  })

  it('shows a higher count after more events are consumed', async () => {
    const before = await pageCount()
    await send(topic, eventsFor(3000, 500, nowMs))
    await consume()
    const expected = (await ipcCount()).unique_device_ip_count
    expect(expected).to.equal(before + 500)
    await waitFor('the page to show the new count', async () => ((await pageCount()) === expected ? true : undefined), 30_000, 200)
  })

  it('says the backend is down while ClickHouse is stopped, and recovers when it is back', async () => {
    const shown = await pageCount()
    await servicesCommand('stop', 'clickhouse')
    try {
      await waitFor('the page to say the backend is down', async () => ((await pageState()) === 'down' ? true : undefined), 30_000, 200)
      const text = await page.locator('#state').textContent()
      expect(text).to.match(/^Backend down: clickhouse at http:\/\/127\.0\.0\.1:\d+ — .*ECONNREFUSED/)
      expect(await page.locator('#state').isVisible()).to.be.true
      expect(await pageCount(), 'the last count stays on the page').to.equal(shown)
    } finally {
      await servicesCommand('up', 'clickhouse')
    }
    await waitFor('the page to recover', async () => ((await pageState()) === 'ok' ? true : undefined), 60_000, 200)
    expect(await page.locator('#state').isVisible()).to.be.false
    expect(await pageCount()).to.equal(shown)
  })
})
