import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {PrometheusServer, type PrometheusAlert, RULES_FILE, withForDuration} from '../support/prometheus.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {CuttableLink} from '../support/tcp-proxy.js'
import {produce, startProduce} from '../support/runs.js'

const LAG_ALERT = 'IpcConsumerLagGrowing'

/**
 * deploy/prometheus/ipc-rules.yml loaded into a real Prometheus (Debian's) that scrapes a running
 * `ipc consume --metrics-port` and `ipc serve` every second: with Redis cut off the lag alert goes
 * pending, then firing, and resolves once Redis is back. The rules are the shipped ones with every
 * `for:` shortened to seconds.
 */
describe('Prometheus rules on a real Prometheus: the lag alert of a Redis outage', function () {
  this.timeout(300_000)
  let link: CuttableLink
  let consumer: RunningCli | undefined
  let serve: RunningServe | undefined
  let producer: RunningCli | undefined
  let prometheus: PrometheusServer | undefined

  after(async () => {
    producer?.child.kill('SIGTERM')
    await prometheus?.stop()
    await serve?.stop()
    consumer?.child.kill('SIGTERM')
    await consumer?.done
    await link?.stop()
  })

  it('goes pending, then firing while Redis is cut off, and resolves after Redis returns', async () => {
    const topic = uniqueName('prom')
    const group = uniqueName('g_prom')
    const redisKey = uniqueName('ipc:prom')
    await createTopic(topic, 4)
    await produce(topic, {'--num-devices': '200', '--num-messages': '500', '--seed': '7', '--batch': '100', '--pause-ms': '0'})

    link = await CuttableLink.forUrl(serviceUrls().redisUrl, 6379).start()
    const redisUrl = link.urlFor(serviceUrls().redisUrl)
    const backend = ['--backend', 'redis', '--redis-url', redisUrl, '--redis-key', redisKey]
    const running = startIpc(
      ['consume', '--topic', topic, '--group', group, '--from-beginning', ...backend, '--metrics-port', '0', '--session-timeout', '6s'],
      {timeoutMs: 300_000},
    )
    consumer = running
    const metricsUrl = await waitFor('the metrics address on stderr', () => /metrics on (http:\/\/[\d.:]+)\/metrics/.exec(running.stderr())?.[1], 30_000)
    const serving = await startServe(backend, {timeoutMs: 300_000})
    serve = serving
    // A steady stream, which the consumer keeps up with until Redis is cut off.
    const stream = startProduce(topic, {'--num-devices': '500', '--num-messages': '60000', '--seed': '8', '--batch': '20', '--pause-ms': '100'})
    producer = stream

    prometheus = await new PrometheusServer([
      {job: 'ipc-consume', targets: [new URL(metricsUrl).host]},
      {job: 'ipc-serve', targets: [new URL(serving.url).host]},
    ])
      .addRules('ipc-rules.yml', withForDuration(readFileSync(RULES_FILE, 'utf8'), '10s'))
      .start()
    const server = prometheus
    const lagAlerts = async (): Promise<PrometheusAlert[]> =>
      (await server.alerts()).filter((alert) => alert.labels.alertname === LAG_ALERT && alert.labels.group === group)
    const countRequest = async () => (await fetch(`${serving.url}/unique_ip_count`)).status

    // Keeping up and quiet: both targets up, every rule evaluated without error, events/s recorded, no alert.
    const eventsPerSecond = await waitFor(
      'both targets up, every rule healthy, events/s recorded and no alert',
      async () => {
        await countRequest()
        const up = await server.query('up')
        const healthy = (await server.rules()).every((rule) => rule.health === 'ok')
        const alerts = await server.alerts()
        const rate = await server.query(`group_topic:ipc_consumer_events:rate1m{group="${group}"}`)
        const quiet = up.length === 2 && up.every((sample) => sample.value === 1) && healthy && alerts.length === 0
        return quiet && rate.length > 0 && rate[0].value > 0 ? rate : undefined
      },
      90_000,
      500,
    )
    expect(eventsPerSecond.map((sample) => sample.metric)).to.deep.equal([{__name__: 'group_topic:ipc_consumer_events:rate1m', group, topic}])

    link.cut()
    const pending = await waitFor(
      `${LAG_ALERT} pending`,
      async () => {
        await countRequest()
        return (await lagAlerts()).find((alert) => alert.state === 'pending')
      },
      90_000,
      250,
    )
    expect(pending.labels).to.deep.equal({alertname: LAG_ALERT, group, topic, severity: 'warning'})
    expect(Number(pending.value)).to.be.above(1000)
    const firing = await waitFor(
      `${LAG_ALERT} firing`,
      async () => {
        await countRequest()
        return (await lagAlerts()).find((alert) => alert.state === 'firing')
      },
      90_000,
      250,
    )
    expect(firing.annotations.summary).to.equal(`ipc consumer group ${group} falls behind on ${topic}`)
    const lag = await server.query(`group_topic:ipc_consumer_lag:sum{group="${group}"}`)
    expect(lag[0].value).to.be.above(1000)
    // The other alerts of the outage, fired from the same scrapes.
    const firingNames = await waitFor(
      'the alerts of the outage firing',
      async () => {
        await countRequest()
        const names = new Set((await server.alerts()).filter((alert) => alert.state === 'firing').map((alert) => alert.labels.alertname))
        return ['IpcConsumerNotReady', 'IpcBackendWritesFailing', 'IpcServeUnavailable'].every((name) => names.has(name)) ? names : undefined
      },
      90_000,
      250,
    )
    expect([...firingNames]).not.to.include('IpcConsumerDown')

    stream.child.kill('SIGTERM')
    await stream.done
    link.restore()
    await waitFor('the lag alert resolved', async () => ((await lagAlerts()).length === 0 ? true : undefined), 120_000, 250)
    const caughtUp = await server.query(`group_topic:ipc_consumer_lag:sum{group="${group}"}`)
    expect(caughtUp[0].value).to.be.below(1000)
    await waitFor('the consumer ready again', async () => ((await server.query('ipc_consumer_ready == 1')).length === 1 ? true : undefined), 60_000, 250)
  })
})
