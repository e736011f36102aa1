import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import fc from 'fast-check'
import {
  formatIsoMillis,
  isTimestampFailure,
  MAX_TIMESTAMP_MS,
  MIN_TIMESTAMP_MS,
  type ParsedTimestamp,
  parseTimestamp,
  TIMESTAMP_FORMATS,
  TimestampError,
  tryParseTimestamp,
} from '../../src/events/timestamp.js'

const FIXTURE = new URL('../../../test/fixtures/timestamps.tsv', import.meta.url)
const BARE_NUMBER = /^-?\d+(\.\d+)?$/
const ISO_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

interface FixtureRow {
  input: string
  expected: string
}

/** A parsed timestamp as plain data (`iso` is a getter on the parser's results). */
function plain(parsed: ParsedTimestamp): {ms: number; iso: string; format: string} {
  return {ms: parsed.ms, iso: parsed.iso, format: parsed.format}
}

function loadFixture(): FixtureRow[] {
  return readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const [input, expected] = line.split('\t')
      return {input, expected}
    })
}

/** The reason a value is rejected with, from both variants (which must agree). */
function reasonFor(input: string | number): string {
  const failure = tryParseTimestamp(input)
  if (!isTimestampFailure(failure)) throw new Error(`expected ${JSON.stringify(input)} to be rejected, got ${failure.iso}`)
  try {
    parseTimestamp(input)
  } catch (error) {
    expect(error).to.be.instanceOf(TimestampError)
    expect((error as TimestampError).reason).to.equal(failure.error)
    return failure.error
  }
  throw new Error(`parseTimestamp accepted ${JSON.stringify(input)}`)
}

function iso(input: string | number): string {
  return parseTimestamp(input).iso
}

describe('timestamp parser', () => {
  describe('reference fixture (test/fixtures/timestamps.tsv)', () => {
    const rows = loadFixture()

    it('has rows to check', () => {
      expect(rows.length).to.be.greaterThan(15)
    })

    for (const {input, expected} of rows) {
      if (expected === 'ERROR') {
        it(`rejects ${input}`, () => {
          expect(() => parseTimestamp(input)).to.throw(TimestampError)
          expect(isTimestampFailure(tryParseTimestamp(input))).to.equal(true)
        })
        continue
      }
      it(`${input} → ${expected} (string)`, () => {
        const parsed = parseTimestamp(input)
        expect(parsed.iso).to.equal(expected)
        expect(parsed.ms).to.equal(Date.parse(expected))
      })
      if (BARE_NUMBER.test(input)) {
        it(`${input} → ${expected} (JS number)`, () => {
          const parsed = parseTimestamp(Number(input))
          expect(parsed.iso).to.equal(expected)
          expect(parsed.ms).to.equal(Date.parse(expected))
        })
      }
    }
  })

  describe('rejections and their reasons', () => {
    const cases: Array<[string | number, RegExp]> = [
      ['', /^empty input$/],
      ['   \t ', /^empty input$/],
      ["''", /^empty value inside quotes$/],
      ['""', /^empty value inside quotes$/],
      ["'2021-12-03T16:15:30Z", /unbalanced quote/],
      ["2021-12-03T16:15:30Z'", /unbalanced quote/],
      [`'2021-12-03T16:15:30Z"`, /unbalanced quote/],
      ["'", /unbalanced quote/],
      ['2021-13-01T00:00:00Z', /month 13 does not exist/],
      ['2021-00-10T00:00:00Z', /month 00 does not exist/],
      ['2021-01-00T00:00:00Z', /day 00 does not exist in 2021-01/],
      ['2021-02-30T00:00:00', /day 30 does not exist in 2021-02 \(expected 01-28\)/],
      ['2021-02-29T00:00:00Z', /day 29 does not exist in 2021-02/],
      ['1900-02-29T00:00:00Z', /day 29 does not exist in 1900-02/],
      ['2021-04-31T00:00:00Z', /day 31 does not exist in 2021-04 \(expected 01-30\)/],
      ['2021-12-32T00:00:00Z', /day 32 does not exist/],
      ['2021-12-03T24:00:00Z', /hour 24 is out of range/],
      ['2021-12-03T25:00:00Z', /hour 25 is out of range/],
      ['2021-12-03T16:60:00Z', /minute 60 is out of range/],
      ['2016-12-31T23:59:60Z', /second 60 \(a leap second\) is not accepted/],
      ['2021-12-03T16:15:61Z', /second 61 is out of range/],
      ['2021-12-03T16:15:30+24:00', /zone offset hour 24 is out of range/],
      ['2021-12-03T16:15:30-2400', /zone offset hour 24 is out of range/],
      ['2021-12-03T16:15:30+01:60', /zone offset minute 60 is out of range/],
      ['2021-12-03T16:15:30.1234567891Z', /fraction of a second longer than 9 digits/],
      ['2021-12-03', /date without a time of day/],
      ['0000-01-01T00:00:00+00:01', /outside the supported years 0000-9999/],
      ['9999-12-31T23:59:59-00:01', /outside the supported years 0000-9999/],
      ['-62167219201', /outside the supported years 0000-9999 \(read as epoch seconds\)/],
      [-62_167_219_200_001, /outside the supported years 0000-9999 \(read as epoch milliseconds\)/],
      ['253402300800000000000', /outside the supported years 0000-9999 \(read as epoch nanoseconds\)/],
      ['1'.repeat(40), /outside the supported years 0000-9999 \(read as epoch nanoseconds\)/],
      [1e21, /outside the supported years 0000-9999/],
      [-1e300, /outside the supported years 0000-9999/],
      [Number.NaN, /not a finite number \(NaN\)/],
      [Number.POSITIVE_INFINITY, /not a finite number \(Infinity\)/],
      [Number.NEGATIVE_INFINITY, /not a finite number \(-Infinity\)/],
    ]
    for (const [input, reason] of cases) {
      it(`${JSON.stringify(input) ?? String(input)} → ${reason.source}`, () => {
        expect(reasonFor(input)).to.match(reason)
      })
    }

    const unrecognised = [
      'not-a-date',
      'now',
      '2021-12-03T16:15:30.Z',
      '2021-12-03T16:15:30+02',
      '2021-12-03T16:15:30+2:00',
      '2021-12-03T16:15:30 Z',
      '2021-12-03T16:15:30ZZ',
      '2021-12-03T16:15:30Z trailing',
      '2021-12-03T16:15.123Z',
      '2021-12-03T1:15:30Z',
      '2021-12-03X16:15:30Z',
      '2021-12-03  16:15:30',
      '2021-1-03T16:15:30Z',
      '21-12-03T16:15:30Z',
      '+2021-12-03T16:15:30Z',
      '2021/12/03 16:15:30',
      '2021-12-03T16:15:30,235Z',
      '+1726668850',
      '1726668850.',
      '.5',
      '-',
      '--1',
      '1e9',
      '0x10',
      '1_000',
      '1726668850 124',
      "' 1726668850'",
      '１７２６６６８８５０',
    ]
    for (const input of unrecognised) {
      it(`${JSON.stringify(input)} is not recognised`, () => {
        expect(reasonFor(input)).to.match(/^not an ISO 8601 date-time .* or an epoch number$/)
      })
    }

    it('tryParseTimestamp rejects non-string, non-number values without throwing', () => {
      const values: unknown[] = [null, undefined, true, false, {}, [], [1726668850], {ms: 1}, 1726668850n, Symbol('x'), () => 1, new Date(0)]
      for (const value of values) {
        const result = tryParseTimestamp(value)
        expect(isTimestampFailure(result), String(value)).to.equal(true)
        expect((result as {error: string}).error).to.match(/^expected a string or a number, got /)
      }
      expect((tryParseTimestamp(null) as {error: string}).error).to.equal('expected a string or a number, got null')
    })

    it('parseTimestamp throws TimestampError (a named Error with reason and input) for non-string values', () => {
      try {
        parseTimestamp(null as unknown as string)
        expect.fail('accepted null')
      } catch (error) {
        expect(error).to.be.instanceOf(TimestampError)
        expect(error).to.be.instanceOf(Error)
        const timestampError = error as TimestampError
        expect(timestampError.name).to.equal('TimestampError')
        expect(timestampError.input).to.equal(null)
        expect(timestampError.reason).to.equal('expected a string or a number, got null')
      }
    })

    it('TimestampError message names the input and the reason', () => {
      expect(() => parseTimestamp('2021-02-30T00:00:00')).to.throw(
        TimestampError,
        'invalid timestamp "2021-02-30T00:00:00": day 30 does not exist in 2021-02 (expected 01-28)',
      )
    })
  })

  describe('quotes and whitespace', () => {
    it('strips surrounding whitespace and one matching pair of quotes', () => {
      expect(iso("  '2021-12-03T16:15:30.235Z'  ")).to.equal('2021-12-03T16:15:30.235Z')
      expect(iso('"1726668850124"')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso('\t1726667942\r\n')).to.equal('2024-09-18T13:59:02.000Z')
      expect(iso('\uFEFF1726667942')).to.equal('2024-09-18T13:59:02.000Z')
      expect(iso(' "2021-12-03 16:15:30" ')).to.equal('2021-12-03T16:15:30.000Z')
    })

    it('strips only one pair of quotes and no whitespace inside them', () => {
      expect(reasonFor(`"'1726668850124'"`)).to.match(/not an ISO 8601/)
      expect(reasonFor(`' 2021-12-03T16:15:30Z'`)).to.match(/not an ISO 8601/)
    })
  })

  describe('ISO 8601 forms', () => {
    it('accepts every zone form', () => {
      expect(plain(parseTimestamp('2021-12-03T16:15:30Z'))).to.deep.equal({
        ms: Date.UTC(2021, 11, 3, 16, 15, 30),
        iso: '2021-12-03T16:15:30.000Z',
        format: 'iso8601',
      })
      expect(iso('2021-12-03T16:15:30z')).to.equal('2021-12-03T16:15:30.000Z')
      expect(iso('2021-12-03T16:15:30+02:00')).to.equal('2021-12-03T14:15:30.000Z')
      expect(iso('2021-12-03T16:15:30+0200')).to.equal('2021-12-03T14:15:30.000Z')
      expect(iso('2021-12-03T16:15:30-05:30')).to.equal('2021-12-03T21:45:30.000Z')
      expect(iso('2021-12-03T16:15:30-0530')).to.equal('2021-12-03T21:45:30.000Z')
      expect(iso('2021-12-03T16:15:30+00:00')).to.equal('2021-12-03T16:15:30.000Z')
      expect(iso('2021-12-03T16:15:30-00:00')).to.equal('2021-12-03T16:15:30.000Z')
      expect(iso('2021-12-03T00:30:00+23:59')).to.equal('2021-12-02T00:31:00.000Z')
      expect(iso('2021-12-31T23:30:00-23:59')).to.equal('2022-01-01T23:29:00.000Z')
      expect(plain(parseTimestamp('2021-12-03T16:15:30'))).to.deep.equal({
        ms: Date.UTC(2021, 11, 3, 16, 15, 30),
        iso: '2021-12-03T16:15:30.000Z',
        format: 'iso8601-no-zone',
      })
    })

    it('accepts T, t or one space between date and time', () => {
      for (const separator of ['T', 't', ' ']) expect(iso(`2021-12-03${separator}16:15:30.5Z`)).to.equal('2021-12-03T16:15:30.500Z')
    })

    it('accepts HH:mm without seconds', () => {
      expect(iso('2021-12-03T16:15')).to.equal('2021-12-03T16:15:00.000Z')
      expect(iso('2021-12-03T16:15Z')).to.equal('2021-12-03T16:15:00.000Z')
      expect(iso('2021-12-03 16:15+01:00')).to.equal('2021-12-03T15:15:00.000Z')
    })

    it('reads fractions of 1 to 9 digits and truncates beyond milliseconds', () => {
      const expected = ['100', '120', '123', '123', '123', '123', '123', '123', '123']
      for (let digits = 1; digits <= 9; digits++) {
        expect(iso(`2021-12-03T16:15:30.${'123456789'.slice(0, digits)}Z`)).to.equal(`2021-12-03T16:15:30.${expected[digits - 1]}Z`)
      }
      expect(iso('2021-12-03T16:15:30.9999999Z')).to.equal('2021-12-03T16:15:30.999Z')
      expect(iso('2021-12-03T16:15:30.999999999+05:00')).to.equal('2021-12-03T11:15:30.999Z')
      expect(iso('2021-12-31T23:59:59.9999Z')).to.equal('2021-12-31T23:59:59.999Z')
      expect(iso('2021-12-03T16:15:30.000000001')).to.equal('2021-12-03T16:15:30.000Z')
    })

    it('validates leap days with the Gregorian rules', () => {
      expect(iso('2020-02-29T12:00:00Z')).to.equal('2020-02-29T12:00:00.000Z')
      expect(iso('2000-02-29T12:00:00Z')).to.equal('2000-02-29T12:00:00.000Z')
      expect(iso('0000-02-29T12:00:00Z')).to.equal('0000-02-29T12:00:00.000Z')
      expect(reasonFor('2100-02-29T12:00:00Z')).to.match(/day 29 does not exist/)
    })

    it('handles years 0000-0099 (which Date.UTC would map to 1900-1999) and the 0000/9999 limits', () => {
      const year99 = new Date(0)
      year99.setUTCFullYear(99, 5, 15)
      expect(parseTimestamp('0099-06-15T00:00:00Z').ms).to.equal(year99.getTime())
      expect(iso('0099-06-15T00:00:00Z')).to.equal('0099-06-15T00:00:00.000Z')
      expect(parseTimestamp('0000-01-01T00:00:00Z').ms).to.equal(MIN_TIMESTAMP_MS)
      expect(iso('0000-01-01T01:00:00+01:00')).to.equal('0000-01-01T00:00:00.000Z')
      expect(parseTimestamp('9999-12-31T23:59:59.999999999Z').ms).to.equal(MAX_TIMESTAMP_MS)
      expect(iso('9999-12-31T22:59:59.999-01:00')).to.equal('9999-12-31T23:59:59.999Z')
      expect(MIN_TIMESTAMP_MS).to.equal(Date.parse('0000-01-01T00:00:00.000Z'))
      expect(MAX_TIMESTAMP_MS).to.equal(Date.parse('9999-12-31T23:59:59.999Z'))
    })
  })

  describe('epoch numbers', () => {
    it('chooses the unit by magnitude at the 1e11, 1e14 and 1e17 boundaries (numbers and strings)', () => {
      const cases: Array<[string, string, string]> = [
        ['99999999999', '5138-11-16T09:46:39.000Z', 'epoch-seconds'],
        ['100000000000', '1973-03-03T09:46:40.000Z', 'epoch-millis'],
        ['99999999999999', '5138-11-16T09:46:39.999Z', 'epoch-millis'],
        ['100000000000000', '1973-03-03T09:46:40.000Z', 'epoch-micros'],
        ['99999999999999999', '5138-11-16T09:46:39.999Z', 'epoch-micros'],
        ['100000000000000000', '1973-03-03T09:46:40.000Z', 'epoch-nanos'],
        ['-100000000000', '1966-10-31T14:13:20.000Z', 'epoch-millis'],
        ['-100000000000000', '1966-10-31T14:13:20.000Z', 'epoch-micros'],
        ['-100000000000000000', '1966-10-31T14:13:20.000Z', 'epoch-nanos'],
      ]
      for (const [text, expected, format] of cases) {
        const number = Number(text)
        expect(parseTimestamp(text), text).to.deep.include({iso: expected, format})
        // 1e17 - 1 is not a double; its nearest double is 1e17 itself.
        if (Number.isSafeInteger(number) || String(number) === text) expect(parseTimestamp(number), text).to.deep.include({iso: expected, format})
      }
      expect(parseTimestamp(1e17 - 1)).to.deep.include({iso: '1973-03-03T09:46:40.000Z', format: 'epoch-nanos'})
      expect(reasonFor('-99999999999')).to.equal('outside the supported years 0000-9999 (read as epoch seconds)')
      expect(reasonFor(-99999999999)).to.equal('outside the supported years 0000-9999 (read as epoch seconds)')
      expect(parseTimestamp('99999999999.999')).to.deep.include({iso: '5138-11-16T09:46:39.999Z', format: 'epoch-seconds'})
      expect(parseTimestamp('000000001726668850')).to.deep.include({iso: '2024-09-18T14:14:10.000Z', format: 'epoch-seconds'})
    })

    it('reads decimals exactly, from strings and from JS numbers', () => {
      expect(iso('1726668850.124')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso(1726668850.124)).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso(1726668850.001)).to.equal('2024-09-18T14:14:10.001Z')
      expect(iso(0.1 + 0.2)).to.equal('1970-01-01T00:00:00.300Z')
      // eslint-disable-next-line no-loss-of-precision -- the nearest double is the point of the test
      expect(iso(1726668850.1239999)).to.equal('2024-09-18T14:14:10.123Z')
      expect(iso('1726668850.1239999999999')).to.equal('2024-09-18T14:14:10.123Z')
      expect(iso('1726668850124.9')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso(1726668850124.9)).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso('1726668850124999')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso('1726668850124999999')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso('1726668850124999.9')).to.equal('2024-09-18T14:14:10.124Z')
      expect(iso(1e-7)).to.equal('1970-01-01T00:00:00.000Z')
      expect(iso('253402300799999999999')).to.equal('9999-12-31T23:59:59.999Z')
    })

    it('floors negative epochs towards -infinity', () => {
      expect(plain(parseTimestamp(-1))).to.deep.equal({ms: -1000, iso: '1969-12-31T23:59:59.000Z', format: 'epoch-seconds'})
      expect(iso('-1.5')).to.equal('1969-12-31T23:59:58.500Z')
      expect(iso(-1.5)).to.equal('1969-12-31T23:59:58.500Z')
      expect(iso('-0.0001')).to.equal('1969-12-31T23:59:59.999Z')
      expect(iso(-1e-7)).to.equal('1969-12-31T23:59:59.999Z')
      expect(iso('-1726668850124')).to.equal('1915-04-15T09:45:49.876Z')
      expect(iso('-1726668850124001')).to.equal('1915-04-15T09:45:49.875Z')
      expect(iso(-1726668850124001)).to.equal('1915-04-15T09:45:49.875Z')
      expect(iso('-1726668850124000000')).to.equal('1915-04-15T09:45:49.876Z')
      expect(iso('-62167219200')).to.equal('0000-01-01T00:00:00.000Z')
    })

    it('reads -0 as the epoch, with ms +0', () => {
      for (const value of ['-0', -0, '-0.0']) {
        const parsed = parseTimestamp(value)
        expect(parsed.iso).to.equal('1970-01-01T00:00:00.000Z')
        expect(Object.is(parsed.ms, 0), String(value)).to.equal(true)
      }
    })
  })

  describe('formatIsoMillis', () => {
    it('formats UTC with three fraction digits and truncates fractional milliseconds', () => {
      expect(formatIsoMillis(0)).to.equal('1970-01-01T00:00:00.000Z')
      expect(formatIsoMillis(-1)).to.equal('1969-12-31T23:59:59.999Z')
      expect(formatIsoMillis(1.9)).to.equal('1970-01-01T00:00:00.001Z')
      expect(formatIsoMillis(-0.5)).to.equal('1969-12-31T23:59:59.999Z')
      expect(formatIsoMillis(MIN_TIMESTAMP_MS)).to.equal('0000-01-01T00:00:00.000Z')
      expect(formatIsoMillis(MAX_TIMESTAMP_MS)).to.equal('9999-12-31T23:59:59.999Z')
    })

    it('throws TimestampError outside years 0000-9999 and for non-finite values', () => {
      for (const value of [MIN_TIMESTAMP_MS - 1, MAX_TIMESTAMP_MS + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => formatIsoMillis(value), String(value)).to.throw(TimestampError)
      }
    })

    it('agrees with Date#toISOString for every instant in range', () => {
      fc.assert(
        fc.property(fc.integer({min: MIN_TIMESTAMP_MS, max: MAX_TIMESTAMP_MS}), (ms) => {
          expect(formatIsoMillis(ms)).to.equal(new Date(ms).toISOString())
        }),
        {numRuns: 2000},
      )
    })
  })

  it('exports the format names', () => {
    expect(TIMESTAMP_FORMATS).to.deep.equal(['iso8601', 'iso8601-no-zone', 'epoch-seconds', 'epoch-millis', 'epoch-micros', 'epoch-nanos'])
  })

  it('gives the same results in another time zone (TZ=America/Bogota, in a child process)', () => {
    const inputs = [
      '2021-12-03T16:15:30.235',
      '2021-12-03 16:15:30',
      '2021-12-03T16:15',
      '2021-03-14T02:30:00',
      '2021-12-03T16:15:30+02:00',
      '1726668850124',
      '1726667942',
      "'2021-10-28T00:00:00.000'",
    ]
    const moduleUrl = new URL('../../src/events/timestamp.js', import.meta.url).href
    const script = `
      const {parseTimestamp} = await import(${JSON.stringify(moduleUrl)})
      const inputs = JSON.parse(process.argv[1])
      console.log(JSON.stringify({offset: new Date(2021, 0, 1).getTimezoneOffset(), results: inputs.map((i) => parseTimestamp(i))}))`
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(inputs)], {
      env: {...process.env, TZ: 'America/Bogota'},
      encoding: 'utf8',
    })
    const child = JSON.parse(output) as {offset: number; results: unknown[]}
    expect(child.offset, 'the child process runs at UTC-5').to.equal(300)
    expect(child.results).to.deep.equal(inputs.map((input) => plain(parseTimestamp(input))))
    expect((child.results[0] as {iso: string}).iso).to.equal('2021-12-03T16:15:30.235Z')
  })

  describe('properties', () => {
    const separator = fc.constantFrom('T', 't', ' ')
    const zoneStyle = fc.constantFrom('Z', 'z', 'colon', 'compact', 'none')
    const offsetMinutes = fc.integer({min: -(23 * 60 + 59), max: 23 * 60 + 59})
    const extraFractionDigits = fc.string({unit: fc.constantFrom(...'0123456789'), maxLength: 6})

    it('an instant written in ISO 8601 with any zone offset parses back to the same instant', () => {
      fc.assert(
        fc.property(
          fc.date({min: new Date(MIN_TIMESTAMP_MS), max: new Date(MAX_TIMESTAMP_MS), noInvalidDate: true}),
          separator,
          zoneStyle,
          offsetMinutes,
          extraFractionDigits,
          (date, sep, style, offset, extra) => {
            const ms = date.getTime()
            const zoneOffset = style === 'colon' || style === 'compact' ? offset : 0
            const localMs = ms + zoneOffset * 60_000
            fc.pre(localMs >= MIN_TIMESTAMP_MS && localMs <= MAX_TIMESTAMP_MS)
            const local = formatIsoMillis(localMs) // YYYY-MM-DDTHH:mm:ss.sssZ
            const sign = zoneOffset < 0 ? '-' : '+'
            const hh = String(Math.floor(Math.abs(zoneOffset) / 60)).padStart(2, '0')
            const mm = String(Math.abs(zoneOffset) % 60).padStart(2, '0')
            const zone = {Z: 'Z', z: 'z', colon: `${sign}${hh}:${mm}`, compact: `${sign}${hh}${mm}`, none: ''}[style]
            const text = `${local.slice(0, 10)}${sep}${local.slice(11, 23)}${extra}${zone}`
            const parsed = parseTimestamp(text)
            expect(parsed.ms, text).to.equal(ms)
            expect(parsed.iso).to.equal(date.toISOString())
            expect(parsed.format).to.equal(style === 'none' ? 'iso8601-no-zone' : 'iso8601')
          },
        ),
        {numRuns: 3000},
      )
    })

    it('epoch milliseconds as numbers and digit strings give the same instant as Date', () => {
      fc.assert(
        fc.property(fc.integer({min: MIN_TIMESTAMP_MS, max: 1e14 - 1}), (ms) => {
          fc.pre(Math.abs(ms) >= 1e11)
          expect(parseTimestamp(ms).iso).to.equal(new Date(ms).toISOString())
          expect(parseTimestamp(String(ms)).iso).to.equal(new Date(ms).toISOString())
        }),
        {numRuns: 2000},
      )
    })

    it('a JS number and its shortest decimal string always give the same result', () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.double({noNaN: true, min: -1e20, max: 1e20}),
            fc.integer({min: -1e9, max: 1e9}).map((n) => n / 1000),
          ),
          (value) => {
            const text = String(value)
            fc.pre(!text.includes('e'))
            expect(tryParseTimestamp(value), text).to.deep.equal(tryParseTimestamp(text))
          },
        ),
        {numRuns: 3000},
      )
    })

    const timestampAlphabet = fc.constantFrom(...'0123456789-:.TtZz+ \'"', '0', '1', '2')
    const anyString = fc.oneof(
      fc.string(),
      fc.string({unit: 'binary'}),
      fc.string({unit: timestampAlphabet, maxLength: 40}),
      // Valid timestamps with one character replaced: reaches the deep validation paths.
      fc
        .tuple(
          fc.date({min: new Date(MIN_TIMESTAMP_MS), max: new Date(MAX_TIMESTAMP_MS), noInvalidDate: true}),
          fc.nat(30),
          fc.string({minLength: 1, maxLength: 1, unit: timestampAlphabet}),
        )
        .map(([date, at, replacement]) => {
          const text = `${date.toISOString().slice(0, 23)}+05:30`
          return text.slice(0, at) + replacement + text.slice(at + 1)
        }),
    )

    it('any string: never throws anything but TimestampError, and accepted values are consistent', () => {
      fc.assert(
        fc.property(anyString, (input) => {
          const result = tryParseTimestamp(input)
          let thrown: unknown
          try {
            parseTimestamp(input)
          } catch (error) {
            thrown = error
          }
          if (isTimestampFailure(result)) {
            expect(thrown, input).to.be.instanceOf(TimestampError)
            expect(result.error).to.be.a('string').and.not.equal('')
          } else {
            expect(thrown, input).to.equal(undefined)
            expect(result.iso).to.match(ISO_MILLIS)
            expect(Number.isInteger(result.ms)).to.equal(true)
            expect(result.ms).to.be.within(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS)
            expect(Date.parse(result.iso)).to.equal(result.ms)
            expect(TIMESTAMP_FORMATS).to.include(result.format)
          }
        }),
        {numRuns: 5000},
      )
    })

    it('anything at all: tryParseTimestamp never throws', () => {
      fc.assert(
        fc.property(fc.oneof(fc.anything(), fc.double(), fc.integer(), fc.bigInt()), (value) => {
          const result = tryParseTimestamp(value)
          expect(result).to.be.an('object')
          if (typeof value !== 'string' && typeof value !== 'number') expect(isTimestampFailure(result)).to.equal(true)
        }),
        {numRuns: 3000},
      )
    })
  })
})
