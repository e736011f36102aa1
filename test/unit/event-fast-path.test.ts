import {isUtf8} from 'node:buffer'
import {expect} from 'chai'
import fc from 'fast-check'
import {type EventResult, parseEvent} from '../../src/events/event.js'
import {EventGenerator} from '../../src/loadgen/generator.js'

/**
 * Kafka message values (Buffers) of plain ASCII take a fast path that reads the fields from the
 * bytes; everything else goes through JSON.parse. Both must give the same result for every input:
 * the reference is the general path, reached by passing the same message as a string.
 */
function throughGeneralPath(bytes: Buffer): EventResult {
  if (bytes.length === 0) return parseEvent(bytes)
  if (!isUtf8(bytes)) return {ok: false, reason: 'invalid_utf8', detail: 'message value is not valid UTF-8'}
  return parseEvent(bytes.toString('utf8'))
}

function expectSameResult(text: string | Buffer): void {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text
  const fast = parseEvent(bytes)
  const general = throughGeneralPath(bytes)
  expect(fast, bytes.toString('latin1')).to.deep.equal(general)
  if (fast.ok && general.ok) expect(Object.is(fast.event.errorCode, general.event.errorCode), 'error_code sign').to.equal(true)
}

const anyValue = fc.oneof(
  fc.string(),
  fc.string({unit: 'binary'}),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1e21, 1.5, -128, 127, 128, -129, 2 ** 53 + 1, 1726668850124, 1726667942.5),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({maxDepth: 2}),
)

const deviceIp = fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), anyValue)
const timestamp = fc.oneof(
  fc.date({min: new Date(Date.UTC(1000, 0, 1)), max: new Date(Date.UTC(9000, 0, 1)), noInvalidDate: true}).map((date) => date.toISOString()),
  fc.integer({min: 0, max: 2 ** 52}),
  fc.integer({min: 0, max: 2 ** 52}).map(String),
  fc.constantFrom('2021-12-03 16:15:30', "'1726668850124'", '2021-02-30T00:00:00', ' 1726667942 ', '2021-12-03T18:15:30.235+02:00'),
  anyValue,
)
const errorCode = fc.oneof(fc.integer({min: -200, max: 200}), anyValue)

const eventObject = fc.record({timestamp, device_ip: deviceIp, error_code: errorCode, extra: anyValue, é: anyValue}, {requiredKeys: []})

describe('parseEvent fast path (message bytes)', () => {
  it('gives the general path result for every generated device event', () => {
    const generator = new EventGenerator({numDevices: 1000, seed: 11})
    for (let i = 0; i < 5000; i++) {
      const {value} = generator.next()
      expectSameResult(value)
      expect(parseEvent(Buffer.from(value)).ok, value).to.equal(true)
    }
  })

  it('gives the general path result for event-like objects in any JSON formatting', () => {
    fc.assert(
      fc.property(eventObject, fc.constantFrom(undefined, 0, 1, 2, '\t', ' \r'), (object, indent) => {
        expectSameResult(JSON.stringify(object, null, indent as string | number | undefined))
      }),
      {numRuns: 3000},
    )
  })

  it('lets the last of duplicate keys win, as JSON.parse does', () => {
    expectSameResult('{"device_ip":"10.0.0.1","timestamp":1726667942,"error_code":1,"device_ip":"10.0.0.2"}')
    expectSameResult('{"device_ip":"10.0.0.1","timestamp":1726667942,"error_code":1,"device_ip":7}')
    expect(parseEvent(Buffer.from('{"device_ip":"10.0.0.1","timestamp":1726667942,"error_code":1,"device_ip":"10.0.0.2"}'))).to.deep.include({ok: true})
  })

  it('handles numbers, literals and escapes exactly as JSON.parse', () => {
    const base = (errorCodeText: string, extra = '') => `{"timestamp":1726667942,"device_ip":"10.1.2.3","error_code":${errorCodeText}${extra}}`
    for (const number of [
      '0',
      '-0',
      '4',
      '-128',
      '127',
      '1.0',
      '4e0',
      '4E+0',
      '40e-1',
      '1.5',
      '128',
      '01',
      '-',
      '1.',
      '.5',
      '1e',
      '+1',
      '0x10',
      'NaN',
      '1e400',
      '123456789012345678901',
    ]) {
      expectSameResult(base(number))
    }
    for (const extra of [
      ',"x":true',
      ',"x":false',
      ',"x":null',
      ',"x":tru',
      ',"x":nul',
      ',"x":"a\\"b"',
      ',"x":"\\u0041"',
      ',"x":[1]',
      ',"x":{}',
      ',',
      ',"x"',
      ',"x":',
    ]) {
      expectSameResult(base('4', extra))
    }
    for (const text of [
      '{}',
      ' { } ',
      '{"device_ip":"10.1.2.3"}',
      '[]',
      '"x"',
      '1',
      'null',
      '{"a":1}x',
      '{"a":1} ',
      '{"a" 1}',
      '{a:1}',
      '{"a":1,}',
      '{"device_ip":"10.1.2.3\t"}',
    ]) {
      expectSameResult(text)
    }
    expectSameResult('{"timestamp":"2021-12-03T16:15:30.235Z","device_ip":"10.\\u0031.2.3","error_code":4}')
  })

  it('gives the general path result for damaged and non-ASCII messages', () => {
    const valid = Buffer.from('{"timestamp": "2021-12-03T16:15:30.235Z", "device_ip": "10.1.2.3", "error_code": 4}')
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 3}), (edits) => {
        const damaged = Buffer.from(valid)
        for (const [at, byte] of edits) damaged[at] = byte
        expectSameResult(damaged)
      }),
      {numRuns: 3000},
    )
    expectSameResult('{"timestamp":"2021-12-03T16:15:30Z","device_ip":"10.1.2.3","error_code":4,"note":"café"}')
    expectSameResult(Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"timestamp":1726667942,"device_ip":"10.1.2.3","error_code":4}')]))
  })
})
