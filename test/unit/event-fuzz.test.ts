import {expect} from 'chai'
import fc from 'fast-check'
import {INVALID_REASONS, type InvalidReason, MAX_EVENT_BYTES, parseEvent, validateEvent} from '../../src/events/event.js'
import {normalizeIp} from '../../src/events/ip.js'
import {MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, parseTimestamp, TimestampError, tryParseTimestamp} from '../../src/events/timestamp.js'

/**
 * Hostile-input properties of the event validator and the timestamp parser, beyond the examples
 * and the "never throws" properties in event.test.ts and timestamp.test.ts: every result is
 * well-formed, the reason names the field at fault, and bytes and text agree.
 */

const VALID = {timestamp: '2021-12-03T16:15:30.235Z', device_ip: '10.1.2.3', error_code: 4}

/** Longest detail a rejection may carry: it goes into log lines and dead-letter headers. */
const MAX_DETAIL_LENGTH = 300

/** The reasons a bad value of each field may produce when the other fields are valid. */
const FIELD_REASONS: Record<keyof typeof VALID, readonly InvalidReason[]> = {
  device_ip: ['missing_device_ip', 'invalid_device_ip'],
  timestamp: ['missing_timestamp', 'invalid_timestamp'],
  error_code: ['missing_error_code', 'invalid_error_code'],
}

function expectWellFormed(result: ReturnType<typeof parseEvent>, input: unknown): void {
  const shown = String(input).slice(0, 200)
  if (result.ok) {
    const {event} = result
    expect(normalizeIp(event.deviceIp), `${shown}: stored IP is normalised`).to.equal(event.deviceIp)
    expect(Number.isInteger(event.errorCode) && event.errorCode >= -128 && event.errorCode <= 127, shown).to.equal(true)
    expect(Number.isInteger(event.timestampMs), shown).to.equal(true)
    expect(event.timestampMs, shown).to.be.within(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS)
  } else {
    expect(INVALID_REASONS, shown).to.include(result.reason)
    expect(result.detail, shown).to.be.a('string').and.not.equal('')
    expect(result.detail.length, `${shown}: ${result.detail}`).to.be.at.most(MAX_DETAIL_LENGTH)
  }
}

/** A valid event as text with a few random byte edits (insert, delete, replace): mostly near-misses. */
const mutatedEventBytes = fc
  .tuple(
    fc.record({
      timestamp: fc.oneof(fc.constant(VALID.timestamp), fc.integer({min: 0, max: 2e12}), fc.constant('1726668850124')),
      device_ip: fc.oneof(fc.ipV4(), fc.ipV6()),
      error_code: fc.integer({min: -128, max: 127}),
    }),
    fc.array(fc.tuple(fc.constantFrom('insert', 'delete', 'replace'), fc.nat(), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 4}),
  )
  .map(([event, edits]) => {
    const bytes = [...Buffer.from(JSON.stringify(event))]
    for (const [kind, at, byte] of edits) {
      const index = at % (bytes.length + 1)
      if (kind === 'insert') bytes.splice(index, 0, byte)
      else if (kind === 'delete') bytes.splice(index, 1)
      else bytes[Math.min(index, bytes.length - 1)] = byte
    }
    return Buffer.from(bytes)
  })

describe('parseEvent under hostile input (properties)', () => {
  it('mutated valid events: never throws, every result is well-formed (normalised IP, ranges, known reason, short detail)', () => {
    fc.assert(
      fc.property(mutatedEventBytes, (bytes) => {
        expectWellFormed(parseEvent(bytes), bytes.toString('latin1'))
      }),
      {numRuns: 5000},
    )
  })

  it('arbitrary bytes and text, up to and past the size limit: never throws, every result is well-formed', () => {
    const large = fc
      .tuple(fc.string({maxLength: 20}), fc.integer({min: MAX_EVENT_BYTES - 10, max: MAX_EVENT_BYTES + 10}))
      .map(([text, size]) => text.padEnd(size, 'x'))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({maxLength: 300}).map((bytes) => Buffer.from(bytes)),
          fc.string({unit: 'binary', maxLength: 300}),
          large,
        ),
        (input) => {
          expectWellFormed(parseEvent(input), input)
        },
      ),
      {numRuns: 3000},
    )
  })

  it('a bad value in one field is reported as that field, whatever its JSON type or nesting', () => {
    const badValue = fc.oneof(
      fc.jsonValue({maxDepth: 6}),
      fc.string({unit: 'binary'}),
      fc.double(),
      fc.constantFrom(
        null,
        true,
        false,
        [],
        {},
        '',
        ' ',
        '256.1.1.1',
        '1.2.3',
        '::gg',
        '10.0.0.1:80',
        ' 10.0.0.1',
        '2021-02-30T00:00:00',
        128,
        -129,
        1.5,
        '4',
        1e308,
      ),
    )
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(VALID) as Array<keyof typeof VALID>)), badValue, fc.boolean(), (field, value, omit) => {
        const record: Record<string, unknown> = {...VALID, [field]: value}
        if (omit) delete record[field]
        const result = parseEvent(JSON.stringify(record))
        expectWellFormed(result, JSON.stringify(record))
        if (!result.ok) expect(FIELD_REASONS[field], JSON.stringify(record)).to.include(result.reason)
        else expect(omit, 'an omitted field is never valid').to.equal(false)
      }),
      {numRuns: 5000},
    )
  })

  it('reads a message the same from bytes as from the same text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({maxLength: 200}),
          fc.jsonValue().map((value) => JSON.stringify(value) ?? ''),
          fc
            .record({timestamp: fc.constant(VALID.timestamp), device_ip: fc.ipV6(), error_code: fc.constant(VALID.error_code)})
            .map((value) => JSON.stringify(value)),
        ),
        (text) => {
          expect(parseEvent(Buffer.from(text, 'utf8'))).to.deep.equal(parseEvent(text))
        },
      ),
      {numRuns: 3000},
    )
  })

  it('validateEvent never throws on any decoded JSON value, and agrees with parseEvent', () => {
    fc.assert(
      fc.property(fc.jsonValue({maxDepth: 8}), (value) => {
        const result = validateEvent(value)
        expectWellFormed(result, JSON.stringify(value))
        expect(parseEvent(JSON.stringify(value))).to.deep.equal(result)
      }),
      {numRuns: 3000},
    )
  })

  it('deep nesting inside a field, up to the size limit, is an invalid field rather than a crash', () => {
    for (const field of Object.keys(VALID) as Array<keyof typeof VALID>) {
      for (const [open, close] of [
        ['[', ']'],
        ['{"a":', '}'],
      ]) {
        const depth = Math.floor((MAX_EVENT_BYTES - 200) / (open.length + close.length))
        const text = JSON.stringify({...VALID, [field]: 0}).replace(/(:)0([,}])/, `$1${open.repeat(depth)}0${close.repeat(depth)}$2`)
        expect(Buffer.byteLength(text)).to.be.below(MAX_EVENT_BYTES)
        const result = parseEvent(text)
        expectWellFormed(result, `${field} nested ${depth} deep`)
        expect(result.ok).to.equal(false)
        if (!result.ok) expect(FIELD_REASONS[field]).to.include(result.reason)
      }
    }
  })
})

describe('timestamp parser under hostile numbers (properties)', () => {
  const anyNumber = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.constantFrom(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      Number.MIN_VALUE,
      -Number.MIN_VALUE,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.MAX_SAFE_INTEGER,
      1e11,
      1e14,
      1e17,
      -1e11,
    ),
  )

  it('parseTimestamp throws nothing but TimestampError for any number, and agrees with tryParseTimestamp', () => {
    fc.assert(
      fc.property(anyNumber, (value) => {
        const result = tryParseTimestamp(value)
        let thrown: unknown
        let parsed: unknown
        try {
          parsed = parseTimestamp(value)
        } catch (error) {
          thrown = error
        }
        if ('error' in result) {
          expect(thrown, String(value)).to.be.instanceOf(TimestampError)
          expect((thrown as TimestampError).name).to.equal('TimestampError')
          expect((thrown as TimestampError).reason).to.equal(result.error)
        } else {
          expect(thrown, String(value)).to.equal(undefined)
          expect(parsed).to.deep.equal(result)
        }
      }),
      {numRuns: 5000},
    )
  })

  it('parseTimestamp throws nothing but TimestampError for values of any type (as untyped callers may pass)', () => {
    fc.assert(
      fc.property(fc.anything({withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true}), (value) => {
        try {
          parseTimestamp(value as string)
        } catch (error) {
          expect(error).to.be.instanceOf(TimestampError)
        }
        expect(() => tryParseTimestamp(value)).to.not.throw()
      }),
      {numRuns: 3000},
    )
  })
})
