import {createClient as createClickHouseClient} from '@clickhouse/client'
import {expect} from 'chai'
import {runIpc, startIpc, waitFor} from '../support/cli.js'
import {committedTotal, createTopic} from '../support/kafka.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {
  clickhouseConsumeArgs,
  clickhouseCount,
  consumeArgs,
  type ConsumeJson,
  kafka,
  parseJson,
  produce,
  type ProduceJson,
  redisConsumeArgs,
} from '../support/runs.js'

describe('ipc produce → ipc consume → ipc count against the real services', function () {
  this.timeout(180_000)

  describe('100,000 events from 5,000 devices', () => {
    const topic = uniqueName('events')
    let produced: ProduceJson

    before(async () => {
      await createTopic(topic, 4)
      produced = await produce(topic, {'--num-devices': '5000', '--num-messages': '100000', '--seed': '42'})
      expect(produced.messagesSent).to.equal(100_000)
    })

    it('clickhouse counts exactly the distinct devices the producer reported', async () => {
      const database = uniqueName('ipc')
      const consumed = parseJson<ConsumeJson>(await runIpc(clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '3s'})))
      expect(consumed.reason).to.equal('idle')
      expect(consumed.stats.processed).to.equal(100_000)
      expect(consumed.stats.invalid).to.equal(0)
      const counted = await clickhouseCount(database)
      expect(counted.code, counted.stderr).to.equal(0)
      expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
    })

    it('redis counts within 2% of the distinct devices the producer reported', async () => {
      const key = uniqueName('ipc:devices')
      parseJson<ConsumeJson>(await runIpc(redisConsumeArgs(topic, key, uniqueName('g'), {'--until-idle': '3s'})))
      const counted = await runIpc(['count', '--backend', 'redis', '--redis-key', key])
      expect(counted.code, counted.stderr).to.equal(0)
      const estimate = Number(counted.stdout.trim())
      expect(Math.abs(estimate - produced.distinctDevices) / produced.distinctDevices).to.be.below(0.02)
    })
  })

  it('flushes a partial ClickHouse batch on the timer while running, and commits offsets only after the insert', async () => {
    const topic = uniqueName('timer')
    const database = uniqueName('ipc')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const produced = await produce(topic, {'--num-devices': '300', '--num-messages': '500', '--seed': '5'})
    const consumer = startIpc(clickhouseConsumeArgs(topic, database, group, {'--batch-size': '1000000', '--flush-interval': '2s'}, {json: false}))
    const clickhouse = createClickHouseClient({url: serviceUrls().clickhouseUrl})
    try {
      const samples: Array<{committed: number; rows: number}> = []
      const committedSum = () => committedTotal(group, topic)
      const rowCount = async () => {
        try {
          const result = await clickhouse.query({query: `SELECT count() AS n FROM \`${database}\`.events`, format: 'JSONEachRow'})
          return Number(((await result.json()) as Array<{n: string}>)[0].n)
        } catch {
          return 0 // the table does not exist yet
        }
      }
      await waitFor(
        'all rows inserted and all offsets committed',
        async () => {
          // Offsets first, rows second: a commit seen before its rows would show as committed > rows.
          const committed = await committedSum()
          const rows = await rowCount()
          samples.push({committed, rows})
          return committed === 500 && rows === 500 ? true : undefined
        },
        20_000,
        50,
      )
      expect(consumer.child.exitCode, 'the consumer is still running: the timer flushed, not a shutdown').to.equal(null)
      for (const sample of samples) expect(sample.committed, JSON.stringify(sample)).to.be.at.most(sample.rows)
      consumer.child.kill('SIGTERM')
      const result = await consumer.done
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).to.match(/Total devices: \d+/)
      const counted = await clickhouseCount(database)
      expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
    } finally {
      consumer.child.kill('SIGKILL')
      await clickhouse.close()
    }
  })

  it('skips, counts and dead-letters every kind of invalid event while counting the valid ones', async () => {
    const topic = uniqueName('mixed')
    const dlqTopic = uniqueName('dlq')
    await createTopic(topic, 2)
    await createTopic(dlqTopic, 1)
    const valid = Array.from({length: 200}, (_, i) => JSON.stringify({timestamp: 1726668850124 + i, device_ip: `192.168.7.${i % 50}`, error_code: i % 5}))
    const invalid: Array<[string, string | Buffer]> = [
      ['invalid_json', '{"device_ip": "10.0.0.1", '],
      ['not_an_object', '[1, 2, 3]'],
      ['missing_device_ip', JSON.stringify({timestamp: 1726667942, error_code: 1})],
      ['invalid_device_ip', JSON.stringify({timestamp: 1726667942, device_ip: '256.1.1.1', error_code: 1})],
      ['invalid_device_ip', JSON.stringify({timestamp: 1726667942, device_ip: '10.0.0.1:8080', error_code: 1})],
      ['missing_timestamp', JSON.stringify({device_ip: '10.0.0.2', error_code: 1})],
      ['invalid_timestamp', JSON.stringify({timestamp: '2021-02-30T00:00:00', device_ip: '10.0.0.3', error_code: 1})],
      ['invalid_timestamp', JSON.stringify({timestamp: 'not-a-date', device_ip: '10.0.0.4', error_code: 1})],
      ['missing_error_code', JSON.stringify({timestamp: 1726667942, device_ip: '10.0.0.5'})],
      ['invalid_error_code', JSON.stringify({timestamp: 1726667942, device_ip: '10.0.0.6', error_code: 300})],
      ['invalid_utf8', Buffer.from([0x7b, 0xc3, 0x28, 0x7d])],
      ['message_too_large', JSON.stringify({timestamp: 1726667942, device_ip: '10.0.0.7', error_code: 1, pad: 'x'.repeat(70_000)})],
    ]
    const messages = [...valid.map((value) => ({value})), ...invalid.map(([, value]) => ({value}))]
    // Interleave the invalid messages among the valid ones.
    messages.sort((a, b) => ((String(a.value).length * 7919) % 13) - ((String(b.value).length * 7919) % 13))
    const producer = kafka().producer()
    await producer.connect()
    await producer.send({topic, messages})
    await producer.disconnect()

    const consumed = parseJson<ConsumeJson>(
      await runIpc(consumeArgs(topic, uniqueName('g'), {'--backend': 'memory', '--until-idle': '2s', '--dlq-topic': dlqTopic})),
    )
    expect(consumed.totalDevices).to.equal(50)
    expect(consumed.stats.valid).to.equal(200)
    expect(consumed.stats.invalid).to.equal(invalid.length)
    expect(consumed.stats.deadLettered).to.equal(invalid.length)
    const expectedByReason: Record<string, number> = {}
    for (const [reason] of invalid) expectedByReason[reason] = (expectedByReason[reason] ?? 0) + 1
    for (const [reason, n] of Object.entries(consumed.stats.invalidByReason)) expect(n, reason).to.equal(expectedByReason[reason] ?? 0)

    const dlqConsumer = kafka().consumer({groupId: uniqueName('dlq-reader')})
    const received: Array<{reason: string; value: Buffer}> = []
    await dlqConsumer.connect()
    await dlqConsumer.subscribe({topic: dlqTopic, fromBeginning: true})
    await dlqConsumer.run({
      eachMessage: async ({message}) => {
        received.push({reason: String(message.headers?.['ipc.error.reason']), value: message.value ?? Buffer.alloc(0)})
      },
    })
    try {
      await waitFor('dead letters', () => (received.length >= invalid.length ? true : undefined), 30_000)
    } finally {
      await dlqConsumer.disconnect()
    }
    expect(received).to.have.length(invalid.length)
    const byValue = new Map(invalid.map(([reason, value]) => [Buffer.from(value).toString('base64'), reason]))
    for (const letter of received) expect(letter.reason).to.equal(byValue.get(letter.value.toString('base64')))
  })

  it('ipc produce against an unreachable broker exits 3 with the error on stderr, also with --json', async () => {
    const result = await runIpc(['produce', '--topic', uniqueName('nowhere'), '--brokers', '127.0.0.1:1', '--num-messages', '1', '--json'])
    expect(result.code).to.equal(3)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.equal('ipc produce: no Kafka broker answered at 127.0.0.1:1 (Connection error: connect ECONNREFUSED 127.0.0.1:1)\n')
  })

  it('two consumers in one group share a 4-partition topic and together count exactly', async () => {
    const topic = uniqueName('shared')
    const database = uniqueName('ipc')
    const group = uniqueName('g')
    await createTopic(topic, 4)
    const args = clickhouseConsumeArgs(topic, database, group, {'--until-idle': '5s', '--batch-size': '2000'})
    const first = startIpc(args)
    const second = startIpc(args)
    // Produce while both are joining and consuming, so that both own partitions while events flow.
    const produced = await produce(topic, {'--num-devices': '2000', '--num-messages': '40000', '--seed': '7', '--pause-ms': '200'})
    const [a, b] = await Promise.all([first.done, second.done])
    const summaries = [parseJson<ConsumeJson>(a), parseJson<ConsumeJson>(b)]
    expect(summaries[0].stats.processed, 'first consumer took part').to.be.greaterThan(0)
    expect(summaries[1].stats.processed, 'second consumer took part').to.be.greaterThan(0)
    expect(summaries[0].stats.processed + summaries[1].stats.processed).to.be.at.least(produced.messagesSent)
    const counted = await clickhouseCount(database)
    expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
  })
})
