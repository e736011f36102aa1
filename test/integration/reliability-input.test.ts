import {expect} from 'chai'
import type {Message} from 'kafkajs'
import {INVALID_REASONS, type InvalidReason, parseEvent} from '../../src/events/event.js'
import {seededRandom} from '../../src/loadgen/generator.js'
import {createTopic} from '../support/kafka.js'
import {runIpc, waitFor} from '../support/cli.js'
import {uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs, ClickHouseProbe, type ConsumeJson, describeRun, kafka, parseJson, reportFigure} from '../support/runs.js'

/**
 * A corpus of hostile messages mixed with valid events: the consumer must not crash, must give
 * every bad message a reason (and dead-letter it), and must count every valid event exactly.
 */

const OK = {timestamp: '2021-12-03T16:15:30.235Z', device_ip: '10.1.2.3', error_code: 4}
const withField = (field: string, value: unknown) => JSON.stringify({...OK, [field]: value})
const without = (field: keyof typeof OK) => {
  const {[field]: _, ...rest} = OK
  return JSON.stringify(rest)
}
const nested = (open: string, close: string, depth: number, inner = '0') => open.repeat(depth) + inner + close.repeat(depth)
/** The valid event with one field's value replaced by raw JSON text. */
const withRaw = (field: keyof typeof OK, raw: string) =>
  `{${Object.entries(OK)
    .map(([name, value]) => `${JSON.stringify(name)}:${name === field ? raw : JSON.stringify(value)}`)
    .join(',')}}`

/** [expected reason, message value] — null is a tombstone. */
const HOSTILE: Array<[InvalidReason, string | Buffer | null]> = [
  // empty values and tombstones
  ['empty_message', null],
  ['empty_message', ''],
  // too large (the broker takes them; the consumer refuses them before parsing)
  ['message_too_large', withField('padding', 'x'.repeat(70_000))],
  ['message_too_large', Buffer.alloc(200_000, 0x20)],
  ['message_too_large', nested('[', ']', 40_000)],
  // not UTF-8
  ['invalid_utf8', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])],
  ['invalid_utf8', Buffer.from([0x7b, 0xc3, 0x28, 0x7d])],
  ['invalid_utf8', Buffer.from([0xc0, 0xaf])],
  ['invalid_utf8', Buffer.from([0xed, 0xa0, 0x80])],
  ['invalid_utf8', Buffer.concat([Buffer.from(withField('device_ip', '10.0.0.1').slice(0, -1)), Buffer.from([0xe2, 0x82])])],
  // not JSON
  ['invalid_json', '{'],
  ['invalid_json', '{"device_ip": "10.0.0.1", '],
  ['invalid_json', "{'device_ip': '10.0.0.1', 'timestamp': 1, 'error_code': 1}"],
  ['invalid_json', `${withField('device_ip', '10.0.0.1')}}`],
  ['invalid_json', `\uFEFF${withField('device_ip', '10.0.0.1')}`],
  ['invalid_json', 'NaN'],
  ['invalid_json', 'undefined'],
  ['invalid_json', '\u0000'],
  ['invalid_json', withRaw('error_code', '01')],
  // JSON, but not an object
  ['not_an_object', '[]'],
  ['not_an_object', '"10.0.0.1"'],
  ['not_an_object', '42'],
  ['not_an_object', 'true'],
  ['not_an_object', 'null'],
  ['not_an_object', `[${withField('device_ip', '10.0.0.1')}]`],
  ['not_an_object', nested('[', ']', 30_000)],
  // device_ip: missing, wrong types, not an address
  ['missing_device_ip', without('device_ip')],
  ['missing_device_ip', withField('device_ip', null)],
  ['missing_device_ip', '{"__proto__": {"device_ip": "10.0.0.1"}, "timestamp": 1726668850124, "error_code": 1}'],
  ...[167_772_161, true, ['10.0.0.1'], {ip: '10.0.0.1'}].map((value): [InvalidReason, string] => ['invalid_device_ip', withField('device_ip', value)]),
  ...[
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '0x7f.0.0.1',
    '::gg',
    '2001:db8::1::1',
    '12345::',
    '10.0.0.1:8080',
    '[::1]:80',
    '[2001:db8::1]',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '10.0. 0.1',
    'fe80::1%eth0',
    '1.2.3.4/24',
    '',
    '１.２.３.４',
    "10.0.0.1'; DROP TABLE events; --",
    'x'.repeat(60_000),
  ].map((value): [InvalidReason, string] => ['invalid_device_ip', withField('device_ip', value)]),
  ['invalid_device_ip', withRaw('device_ip', nested('[', ']', 15_000))],
  ['invalid_device_ip', withField('device_ip', JSON.parse(nested('{"a":', '}', 2_000)))],
  // timestamp: missing, wrong types, every invalid shape
  ['missing_timestamp', without('timestamp')],
  ['missing_timestamp', withField('timestamp', null)],
  ...[true, {}, [1726668850124], -1e20, 1.5e300].map((value): [InvalidReason, string] => ['invalid_timestamp', withField('timestamp', value)]),
  ...[
    '',
    '   ',
    '""',
    "'2021-12-03T16:15:30Z",
    'not-a-date',
    'NaN',
    'Infinity',
    '1e12',
    '0x1F',
    '+1726668850124',
    '-',
    '12:00',
    '1.2.3',
    '2021-12-03',
    '2021-02-30T00:00:00',
    '2021-02-29T00:00:00Z',
    '2021-13-01T00:00:00Z',
    '2021-12-03T25:00:00Z',
    '2021-12-03T16:60:00Z',
    '2021-12-03T16:15:60Z',
    '2021-12-03T16:15:30.1234567890Z',
    '2021-12-03T16:15:30.Z',
    '2021-12-03T16:15:30,123Z',
    '2021-12-03T16:15:30+24:00',
    '2021-12-03T16:15:30+05:60',
    '2021-12-03T16:15:30ZZ',
    '2021-12-03T16:15:30 Z',
    '2021-12-03 16:15:30.123 +0100',
    '2021/12/03 16:15:30',
    '20211203T161530Z',
    '10000-01-01T00:00:00Z',
    '999999999999999999999',
    '9'.repeat(5000),
  ].map((value): [InvalidReason, string] => ['invalid_timestamp', withField('timestamp', value)]),
  ['invalid_timestamp', withRaw('timestamp', nested('[', ']', 15_000))],
  ['invalid_timestamp', withRaw('timestamp', nested('{"a":', '}', 10_000))],
  // error_code: missing, wrong types, out of range
  ['missing_error_code', without('error_code')],
  ['missing_error_code', withField('error_code', null)],
  ...['4', true, [4], {code: 4}, 1.5, 128, -129, 1e308].map((value): [InvalidReason, string] => ['invalid_error_code', withField('error_code', value)]),
  ['invalid_error_code', withRaw('error_code', '1e400')],
  ['invalid_error_code', withRaw('error_code', nested('[', ']', 15_000))],
]

/** Valid events, several in unusual but accepted forms; maps each to the device it must count as. */
function validEvents(): Array<{value: string; device: string}> {
  const events: Array<{value: string; device: string}> = []
  const shapes = [
    '2021-12-03T16:15:30.235Z',
    '2021-12-03T16:15:30.235',
    '2021-12-03 16:15:30',
    '2021-12-03t16:15',
    1726668850124,
    '1726668850124',
    "'1726668850124'",
    1726667942,
    ' 1726667942.5 ',
    '1726668850124000',
    '1726668850124000000',
    '2021-12-03T16:15:30.123456789+05:30',
  ]
  for (let i = 0; i < 400; i++) {
    const device = `10.9.${(i % 100) >> 4}.${i % 100}`
    events.push({device, value: JSON.stringify({timestamp: shapes[i % shapes.length], device_ip: device, error_code: (i % 256) - 128})})
  }
  // One IPv6 device written five ways, one IPv4 device also written as IPv4-mapped IPv6.
  for (const written of ['2001:db8::1', '2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:DB8::1', '2001:db8:0:0:0:0:0:1', '2001:db8::0:1']) {
    events.push({device: '2001:db8::1', value: JSON.stringify({...OK, device_ip: written})})
  }
  events.push({device: '10.9.0.1', value: JSON.stringify({...OK, device_ip: '::ffff:10.9.0.1'})})
  // Extra fields are ignored, whatever they hold.
  events.push({
    device: '10.8.0.1',
    value: JSON.stringify({...OK, device_ip: '10.8.0.1', note: "'); DROP TABLE events; --", path: 'C:\\temp\\"x"', deep: JSON.parse(nested('[', ']', 500))}),
  })
  events.push({device: '10.8.0.2', value: ` \n${JSON.stringify({...OK, device_ip: '10.8.0.2'})}\t `})
  return events
}

/** Random bytes and random text (seeded), all of them bad; their reasons come from the validator itself. */
function randomGarbage(count: number): Array<[InvalidReason, Buffer]> {
  const random = seededRandom(7)
  const garbage: Array<[InvalidReason, Buffer]> = []
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(random() * 200)
    const bytes = Buffer.alloc(length)
    const printable = i % 2 === 0
    for (let j = 0; j < length; j++) bytes[j] = printable ? 32 + Math.floor(random() * 95) : Math.floor(random() * 256)
    if (printable) bytes[0] = 0x7b // start like an object, to get past the first check more often
    const result = parseEvent(bytes)
    if (!result.ok) garbage.push([result.reason, bytes])
  }
  return garbage
}

describe('reliability: hostile input', function () {
  this.timeout(180_000)

  it('the consumer survives a corpus of bad messages mixed with valid events: every bad one gets a reason and a dead letter, every valid one is counted', async () => {
    const topic = uniqueName('hostile')
    const dlqTopic = uniqueName('hostile_dlq')
    const database = uniqueName('ipc_hostile')
    await createTopic(topic, 3)
    await createTopic(dlqTopic, 1)
    const garbage = randomGarbage(300)
    const bad: Array<[InvalidReason, string | Buffer | null]> = [...HOSTILE, ...garbage]
    const valid = validEvents()
    // Interleave deterministically, bad messages in between valid ones, some with hostile headers and keys.
    const messages: Message[] = []
    const step = Math.max(1, Math.floor(valid.length / bad.length))
    let next = 0
    for (const [index, [, value]] of bad.entries()) {
      for (let k = 0; k < step && next < valid.length; k++) messages.push({key: valid[next].device, value: valid[next++].value})
      messages.push({
        key: index % 3 === 0 ? Buffer.from([0xff, 0x00]) : null,
        value,
        headers: index % 5 === 0 ? {'x-binary': Buffer.from([0x00, 0xff]), 'x-text': "'; --"} : undefined,
      })
    }
    for (; next < valid.length; next++) messages.push({key: valid[next].device, value: valid[next].value})

    const producer = kafka().producer()
    await producer.connect()
    try {
      for (let start = 0; start < messages.length; start += 50) await producer.send({topic, messages: messages.slice(start, start + 50)})
    } finally {
      await producer.disconnect()
    }

    const result = await runIpc(clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '3s', '--dlq-topic': dlqTopic, '--batch-size': '100'}))
    const consumed = parseJson<ConsumeJson>(result)

    const expectedByReason = Object.fromEntries(INVALID_REASONS.map((reason) => [reason, 0])) as Record<InvalidReason, number>
    for (const [reason] of bad) expectedByReason[reason]++
    expect(consumed.stats.processed, describeRun(result)).to.equal(messages.length)
    expect(consumed.stats.invalid).to.equal(bad.length)
    expect(
      Object.values(consumed.stats.invalidByReason).reduce((sum, n) => sum + n, 0),
      'every bad message has exactly one reason',
    ).to.equal(bad.length)
    expect(consumed.stats.invalidByReason).to.deep.equal(expectedByReason)
    expect(consumed.stats.valid).to.equal(valid.length)
    expect(consumed.stats.deadLettered).to.equal(bad.length)

    const devices = new Set(valid.map((event) => event.device))
    expect(consumed.totalDevices).to.equal(devices.size)
    const probe = new ClickHouseProbe(database)
    try {
      expect(await probe.rows(), 'each valid event stored once').to.equal(valid.length)
      const stored = await probe.query<{device_ip: string}>(`SELECT DISTINCT device_ip FROM \`${database}\`.events ORDER BY device_ip`)
      expect(stored.map((row) => row.device_ip)).to.deep.equal([...devices].sort())
    } finally {
      await probe.close()
    }

    // The dead-letter topic holds every bad message, byte for byte, with its reason.
    const received: Array<{reason: string; value: Buffer | null}> = []
    const reader = kafka().consumer({groupId: uniqueName('dlq_reader')})
    await reader.connect()
    await reader.subscribe({topic: dlqTopic, fromBeginning: true})
    await reader.run({eachMessage: async ({message}) => void received.push({reason: String(message.headers?.['ipc.error.reason']), value: message.value})})
    try {
      await waitFor('every dead letter', () => (received.length >= bad.length ? true : undefined), 60_000)
    } finally {
      await reader.disconnect()
    }
    const key = (value: string | Buffer | null) => (value === null ? 'null' : Buffer.from(value).toString('base64'))
    const expectedLetters = bad.map(([reason, value]) => `${reason}:${key(value)}`).sort()
    const letters = received.map(({reason, value}) => `${reason}:${key(value === null || value.length > 0 ? value : '')}`).sort()
    expect(letters.length).to.equal(expectedLetters.length)
    expect(letters.join('\n') === expectedLetters.join('\n'), 'dead letters match the bad messages').to.equal(true)

    reportFigure(
      `hostile input: ${bad.length} bad messages (${HOSTILE.length} crafted, ${garbage.length} random) ` +
        `among ${valid.length} valid events; ${devices.size} devices counted exactly, 0 lost`,
    )
  })
})
