import {expect} from 'chai'
import {runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {uniqueName} from '../support/services.js'
import {consumeArgs, type ConsumeJson, describeRun, kafka, parseJson} from '../support/runs.js'

/**
 * `ipc consume --from-time`: events produced with known timestamps (Kafka's CreateTime, set by the
 * producer) in three hours; a new group started at the second hour reads exactly the events of the
 * second and third, a group with offsets is refused unless --reset-offsets, which replays.
 */

const HOUR_MS = 3_600_000
const PARTITIONS = 3

/** Writes `perHour` valid events in each of three hours ending an hour ago; returns the hours' start times. */
async function produceThreeHours(topic: string, perHour: number): Promise<number[]> {
  const firstHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 3 * HOUR_MS
  const hours = [firstHour, firstHour + HOUR_MS, firstHour + 2 * HOUR_MS]
  const producer = kafka().producer()
  await producer.connect()
  try {
    for (const [hourIndex, hour] of hours.entries()) {
      const messages = Array.from({length: perHour}, (_, index) => {
        const timestamp = hour + index * 1000
        const value = JSON.stringify({timestamp, device_ip: `10.${hourIndex}.${Math.floor(index / 250)}.${index % 250}`, error_code: 1})
        return {value, timestamp: String(timestamp), partition: index % PARTITIONS}
      })
      await producer.send({topic, messages, acks: -1})
    }
  } finally {
    await producer.disconnect()
  }
  return hours
}

describe('ipc consume --from-time', function () {
  this.timeout(180_000)
  const perHour = 300
  let topic: string
  let hours: number[]

  before(async () => {
    topic = uniqueName('from_time')
    await createTopic(topic, PARTITIONS)
    hours = await produceThreeHours(topic, perHour)
  })

  const consume = (group: string, flags: Record<string, string>, extra: string[] = []) =>
    runIpc([...consumeArgs(topic, group, {'--backend': 'memory', '--until-idle': '2s', ...flags}, {fromBeginning: false}), ...extra])

  it('starts a new group at the first event at or after the time, in every partition', async () => {
    // Given events in three hours, when a new group starts at the second hour, then it reads the last two hours' events.
    const group = uniqueName('g_from_time')
    const result = await consume(group, {'--from-time': new Date(hours[1]).toISOString()})
    const summary = parseJson<ConsumeJson>(result)
    expect(summary.stats.processed).to.equal(2 * perHour)
    expect(summary.totalDevices).to.equal(2 * perHour)
    expect(result.stderr).to.include(`group ${group} starts ${topic} at ${new Date(hours[1]).toISOString()}`)
  })

  it('reads a number of minutes as that long before now', async () => {
    // The third hour's events lie in the first 5 minutes of the last whole hour: a minute before that hour reads only them.
    const group = uniqueName('g_from_ago')
    const ago = Math.ceil((Date.now() - hours[2]) / 60_000) + 1
    const result = await consume(group, {'--from-time': `${ago}m`})
    expect(parseJson<ConsumeJson>(result).stats.processed).to.equal(perHour)
  })

  it('refuses a group with committed offsets (exit 2, nothing read) unless --reset-offsets, which replays from the time', async () => {
    // Given a group that has read the whole topic
    const group = uniqueName('g_reset')
    expect(parseJson<ConsumeJson>(await runIpc(consumeArgs(topic, group, {'--backend': 'memory', '--until-idle': '2s'}))).stats.processed).to.equal(3 * perHour)

    // When it is started at a time without --reset-offsets, then it is refused with one line and exit 2
    const refused = await consume(group, {'--from-time': new Date(hours[2]).toISOString()})
    expect(refused.code, describeRun(refused)).to.equal(2)
    expect(refused.stdout).to.equal('')
    expect(refused.stderr.trim().split('\n')).to.have.length(1)
    expect(refused.stderr).to.match(new RegExp(`^ipc consume: group ${group} has committed offsets on ${topic}: .*--reset-offsets`))

    // and with --reset-offsets it reads the third hour again
    const replayed = await consume(group, {'--from-time': new Date(hours[2]).toISOString()}, ['--reset-offsets'])
    expect(parseJson<ConsumeJson>(replayed).stats.processed).to.equal(perHour)
  })

  it('a time after every event starts at the end: nothing is read, nothing fails', async () => {
    const result = await consume(uniqueName('g_future'), {'--from-time': new Date(Date.now() + HOUR_MS).toISOString()})
    expect(parseJson<ConsumeJson>(result).stats.processed).to.equal(0)
  })

  it('a time that is not one is a usage error (exit 2) before anything connects', async () => {
    const result = await consume(uniqueName('g_bad'), {'--from-time': 'yesterday-ish'})
    expect(result.code, describeRun(result)).to.equal(2)
    expect(result.stderr).to.match(/^ipc consume: invalid --from-time "yesterday-ish"/)
  })
})
