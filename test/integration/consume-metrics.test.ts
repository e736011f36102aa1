import {expect} from 'chai'
import {Partitioners} from 'kafkajs'
import {createTopic, kafkaAdminClient} from '../support/kafka.js'
import {type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {scrapeMetrics} from '../support/metrics.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {produce, redisConsumeArgs} from '../support/runs.js'

/** One event of each kind the consumer rejects: invalid_json, missing_timestamp, invalid_timestamp. */
const INVALID_EVENTS = ['not json', '{"device_ip":"10.0.0.1"}', '{"timestamp":"2021-02-30T00:00:00Z","device_ip":"10.0.0.1","error_code":1}']

type Metrics = Map<string, number>

function sumOf(values: Metrics, name: string): number {
  let sum = 0
  for (const [key, value] of values) if (key === name || key.startsWith(`${name}{`)) sum += value
  return sum
}

function lagSeries(values: Metrics): string[] {
  return [...values.keys()].filter((key) => key.startsWith('ipc_consumer_lag{'))
}

async function get(url: string): Promise<{status: number; body: string}> {
  const response = await fetch(url)
  return {status: response.status, body: await response.text()}
}

async function sendRaw(topic: string, values: readonly string[]): Promise<void> {
  const producer = kafkaAdminClient().producer({createPartitioner: Partitioners.DefaultPartitioner})
  await producer.connect()
  try {
    await producer.send({topic, messages: values.map((value) => ({value}))})
  } finally {
    await producer.disconnect()
  }
}

function startConsumer(topic: string, group: string, redisUrl: string, redisKey: string): RunningCli {
  return startIpc(
    redisConsumeArgs(
      topic,
      redisKey,
      group,
      {'--redis-url': redisUrl, '--metrics-port': '0', '--report-interval': '1s', '--session-timeout': '6s'},
      {json: false},
    ),
  )
}

/** The base URL the consumer's metrics server announces on stderr. */
function metricsBase(consumer: RunningCli): Promise<string> {
  return waitFor('the metrics address on stderr', () => /metrics on (http:\/\/[\d.:]+)\/metrics/.exec(consumer.stderr())?.[1], 30_000)
}

/** Scrapes `base` until `holds` is true of the metrics; returns them. */
function waitForMetrics(base: string, what: string, holds: (values: Metrics) => boolean, timeoutMs: number): Promise<Metrics> {
  return waitFor(
    what,
    async () => {
      const values = await scrapeMetrics(base)
      return holds(values) ? values : undefined
    },
    timeoutMs,
    250,
  )
}

/**
 * `ipc consume --metrics-port` against the real services: the counters match what was produced,
 * and the lag rises while Redis is cut off (nothing can be committed) and falls to 0 once it is back.
 */
describe('ipc consume --metrics-port: Prometheus metrics, lag and probes', function () {
  this.timeout(180_000)

  it('counts what was produced, shows the lag of an outage and its catching up, and reports readiness', async () => {
    // Given 3,000 valid events and one invalid event of each kind on 4 partitions, read by a
    // consumer writing to Redis through a link the test can cut;
    // when it has caught up, then Redis is cut while 2,000 more events arrive, then Redis is back;
    // then caught up: every event counted by outcome, 4 lag series summing to 0, ready;
    // during the cut: the lag equals the events held back, writes fail, /readyz answers 503 and a
    // report line shows the lag; after it: the lag is 0 again, everything written, ready;
    // and the run stops on SIGTERM with exit 0 and "lag at stop: 0".
    const topic = uniqueName('metrics')
    const group = uniqueName('g_metrics')
    const redisKey = uniqueName('ipc:metrics')
    await createTopic(topic, 4)
    const first = await produce(topic, {'--num-devices': '2000', '--num-messages': '3000', '--seed': '5', '--batch': '500', '--pause-ms': '0'})
    await sendRaw(topic, INVALID_EVENTS)

    const link = await CuttableLink.forUrl(serviceUrls().redisUrl, 6379).start()
    const consumer = startConsumer(topic, group, link.urlFor(serviceUrls().redisUrl), redisKey)
    try {
      const base = await metricsBase(consumer)
      expect((await get(`${base}/healthz`)).status).to.equal(200)
      await waitFor('readiness', async () => ((await get(`${base}/readyz`)).status === 200 ? true : undefined), 30_000)

      const total = first.messagesSent + INVALID_EVENTS.length
      const caughtUp = await waitForMetrics(
        base,
        'every message consumed and the lag at 0',
        (values) => values.get('ipc_consumer_events_total') === total && lagSeries(values).length === 4 && sumOf(values, 'ipc_consumer_lag') === 0,
        60_000,
      )
      expect(caughtUp.get('ipc_consumer_events_valid_total')).to.equal(first.messagesSent)
      expect(caughtUp.get('ipc_consumer_events_invalid_total{reason="invalid_json"}')).to.equal(1)
      expect(caughtUp.get('ipc_consumer_events_invalid_total{reason="missing_timestamp"}')).to.equal(1)
      expect(caughtUp.get('ipc_consumer_events_invalid_total{reason="invalid_timestamp"}')).to.equal(1)
      expect(caughtUp.get('ipc_backend_written_events_total{backend="redis"}')).to.equal(first.messagesSent)
      expect(caughtUp.get('ipc_backend_write_duration_seconds_count{backend="redis"}')).to.equal(caughtUp.get('ipc_backend_writes_total{backend="redis"}'))
      expect(caughtUp.get('ipc_consumer_group_member')).to.equal(1)
      expect(caughtUp.get('ipc_consumer_ready')).to.equal(1)
      expect(caughtUp.get(`ipc_consumer_info{group="${group}",topic="${topic}",backend="redis"}`)).to.equal(1)
      expect(caughtUp.get('ipc_consumer_assigned_partitions')).to.equal(4)
      expect(caughtUp.get('ipc_consumer_commits_total')).to.be.above(0)
      expect(caughtUp.get('process_resident_memory_bytes')).to.be.above(0)
      expect(lagSeries(caughtUp)).to.have.lengthOf(4)

      link.cut()
      const second = await produce(topic, {'--num-devices': '2000', '--num-messages': '2000', '--seed': '6', '--batch': '500', '--pause-ms': '0'})
      const during = await waitForMetrics(
        base,
        'the lag of the events the outage holds back',
        (values) => sumOf(values, 'ipc_consumer_lag') === second.messagesSent && (values.get('ipc_backend_write_failures_total{backend="redis"}') ?? 0) > 0,
        60_000,
      )
      expect(during.get('ipc_backend_unwritten_events{backend="redis"}')).to.be.above(0)
      expect(during.get('ipc_consumer_ready')).to.equal(0)
      const notReady = await get(`${base}/readyz`)
      expect(notReady.status).to.equal(503)
      expect(JSON.parse(notReady.body)).to.deep.equal({status: 'not ready', reason: 'redis writes are failing'})
      await waitFor('a report line with the lag', () => (/\| lag [1-9][\d,]*$/m.test(consumer.stdout()) ? true : undefined), 10_000)

      link.restore()
      const after = await waitForMetrics(
        base,
        'the lag back at 0',
        (values) => sumOf(values, 'ipc_consumer_lag') === 0 && values.get('ipc_consumer_events_total') === total + second.messagesSent,
        90_000,
      )
      expect(after.get('ipc_backend_written_events_total{backend="redis"}')).to.equal(first.messagesSent + second.messagesSent)
      expect(after.get('ipc_backend_unwritten_events{backend="redis"}')).to.equal(0)
      expect(after.get('ipc_consumer_ready')).to.equal(1)
      expect((await get(`${base}/readyz`)).status).to.equal(200)
    } finally {
      consumer.child.kill('SIGTERM')
      await link.stop()
    }
    const result = await consumer.done
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/^lag at stop: 0$/m)
  })
})
