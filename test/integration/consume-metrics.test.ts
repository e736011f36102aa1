import {expect} from 'chai'
import {Partitioners} from 'kafkajs'
import {createTopic, kafkaAdminClient} from '../support/kafka.js'
import {startIpc, waitFor} from '../support/cli.js'
import {scrapeMetrics} from '../support/metrics.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {produce} from './reliability-helpers.js'

function sumOf(values: Map<string, number>, name: string): number {
  let sum = 0
  for (const [key, value] of values) if (key === name || key.startsWith(`${name}{`)) sum += value
  return sum
}

async function get(url: string): Promise<{status: number; body: string}> {
  const response = await fetch(url)
  return {status: response.status, body: await response.text()}
}

/**
 * `ipc consume --metrics-port` against the real services: the counters match what was produced,
 * and the lag rises while Redis is cut off (nothing can be committed) and falls to 0 once it is back.
 */
describe('ipc consume --metrics-port: Prometheus metrics, lag and probes', function () {
  this.timeout(180_000)

  it('counts what was produced, shows the lag of an outage and its catching up, and reports readiness', async () => {
    const topic = uniqueName('metrics')
    const group = uniqueName('g_metrics')
    const redisKey = uniqueName('ipc:metrics')
    await createTopic(topic, 4)
    const first = await produce(topic, {'--num-devices': '2000', '--num-messages': '3000', '--seed': '5', '--batch': '500', '--pause-ms': '0'})
    const invalid = ['not json', '{"device_ip":"10.0.0.1"}', '{"timestamp":"2021-02-30T00:00:00Z","device_ip":"10.0.0.1","error_code":1}']
    const producer = kafkaAdminClient().producer({createPartitioner: Partitioners.DefaultPartitioner})
    await producer.connect()
    await producer.send({topic, messages: invalid.map((value) => ({value}))})

    const link = await CuttableLink.forUrl(serviceUrls().redisUrl, 6379).start()
    const consumer = startIpc([
      'consume',
      '--topic',
      topic,
      '--group',
      group,
      '--from-beginning',
      '--backend',
      'redis',
      '--redis-url',
      link.urlFor(serviceUrls().redisUrl),
      '--redis-key',
      redisKey,
      '--metrics-port',
      '0',
      '--report-interval',
      '1s',
      '--session-timeout',
      '6s',
    ])
    try {
      const base = await waitFor('the metrics address on stderr', () => /metrics on (http:\/\/[\d.:]+)\/metrics/.exec(consumer.stderr())?.[1], 30_000)
      const scrape = () => scrapeMetrics(base)
      expect((await get(`${base}/healthz`)).status).to.equal(200)
      await waitFor('readiness', async () => ((await get(`${base}/readyz`)).status === 200 ? true : undefined), 30_000)

      const total = first.messagesSent + invalid.length
      const caughtUp = await waitFor(
        'every message consumed and the lag at 0',
        async () => {
          const values = await scrape()
          const lagRead = [...values.keys()].filter((key) => key.startsWith('ipc_consumer_lag{')).length === 4
          return values.get('ipc_consumer_events_total') === total && lagRead && sumOf(values, 'ipc_consumer_lag') === 0 ? values : undefined
        },
        60_000,
        250,
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
      expect([...caughtUp.keys()].filter((key) => key.startsWith('ipc_consumer_lag{'))).to.have.lengthOf(4)

      link.cut()
      const second = await produce(topic, {'--num-devices': '2000', '--num-messages': '2000', '--seed': '6', '--batch': '500', '--pause-ms': '0'})
      const during = await waitFor(
        'the lag of the events the outage holds back',
        async () => {
          const values = await scrape()
          return sumOf(values, 'ipc_consumer_lag') === second.messagesSent && (values.get('ipc_backend_write_failures_total{backend="redis"}') ?? 0) > 0
            ? values
            : undefined
        },
        60_000,
        250,
      )
      expect(during.get('ipc_backend_unwritten_events{backend="redis"}')).to.be.above(0)
      expect(during.get('ipc_consumer_ready')).to.equal(0)
      const notReady = await get(`${base}/readyz`)
      expect(notReady.status).to.equal(503)
      expect(JSON.parse(notReady.body)).to.deep.equal({status: 'not ready', reason: 'redis writes are failing'})
      await waitFor('a report line with the lag', () => (/\| lag [1-9][\d,]*$/m.test(consumer.stdout()) ? true : undefined), 10_000)

      link.restore()
      const after = await waitFor(
        'the lag back at 0',
        async () => {
          const values = await scrape()
          return sumOf(values, 'ipc_consumer_lag') === 0 && values.get('ipc_consumer_events_total') === total + second.messagesSent ? values : undefined
        },
        90_000,
        250,
      )
      expect(after.get('ipc_backend_written_events_total{backend="redis"}')).to.equal(first.messagesSent + second.messagesSent)
      expect(after.get('ipc_backend_unwritten_events{backend="redis"}')).to.equal(0)
      expect(after.get('ipc_consumer_ready')).to.equal(1)
      expect((await get(`${base}/readyz`)).status).to.equal(200)
    } finally {
      consumer.child.kill('SIGTERM')
      await producer.disconnect()
      await link.stop()
    }
    const result = await consumer.done
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/^lag at stop: 0$/m)
  })
})
