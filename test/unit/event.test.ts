import {expect} from 'chai'
import fc from 'fast-check'
import {MAX_EVENT_BYTES, parseEvent} from '../../src/events/event.js'

const valid = (fields: Record<string, unknown>) => JSON.stringify({timestamp: '2021-12-03T16:15:30.235Z', device_ip: '10.1.2.3', error_code: 4, ...fields})

describe('parseEvent', () => {
  it('accepts the documented event and normalises it', () => {
    const result = parseEvent(Buffer.from('{"timestamp": "2021-12-03T16:15:30.235Z", "device_ip": "10.1.2.3", "error_code": 4}'))
    expect(result).to.deep.equal({
      ok: true,
      event: {timestampMs: Date.UTC(2021, 11, 3, 16, 15, 30, 235), deviceIp: '10.1.2.3', errorCode: 4, source: undefined},
    })
  })

  it('accepts every timestamp shape devices send', () => {
    for (const timestamp of ['2021-12-03T16:15:30.235', 1726668850124, '1726668850124', "'1726668850124'", 1726667942, '2021-12-03 16:15:30']) {
      expect(parseEvent(valid({timestamp})).ok, String(timestamp)).to.equal(true)
    }
  })

  it('normalises IPv6 so one device is one device', () => {
    const a = parseEvent(valid({device_ip: '2001:0DB8::0001'}))
    const b = parseEvent(valid({device_ip: '2001:db8:0:0:0:0:0:1'}))
    expect(a.ok && b.ok && a.event.deviceIp === b.event.deviceIp && a.event.deviceIp).to.equal('2001:db8::1')
  })

  const rejections: Array<[string, Buffer | string | null, string]> = [
    ['null value', null, 'empty_message'],
    ['empty value', Buffer.alloc(0), 'empty_message'],
    ['too large', Buffer.alloc(MAX_EVENT_BYTES + 1, 0x20), 'message_too_large'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'invalid_utf8'],
    ['not JSON', '{"timestamp": ', 'invalid_json'],
    ['JSON array', '[1,2]', 'not_an_object'],
    ['JSON string', '"10.1.2.3"', 'not_an_object'],
    ['JSON null', 'null', 'not_an_object'],
    ['no device_ip', JSON.stringify({timestamp: 1726667942, error_code: 1}), 'missing_device_ip'],
    ['device_ip a number', valid({device_ip: 10123}), 'invalid_device_ip'],
    ['device_ip out of range', valid({device_ip: '256.1.1.1'}), 'invalid_device_ip'],
    ['device_ip with port', valid({device_ip: '10.1.2.3:80'}), 'invalid_device_ip'],
    ['device_ip with spaces', valid({device_ip: ' 10.1.2.3'}), 'invalid_device_ip'],
    ['device_ip ::gg', valid({device_ip: '::gg'}), 'invalid_device_ip'],
    ['no timestamp', JSON.stringify({device_ip: '10.1.2.3', error_code: 1}), 'missing_timestamp'],
    ['impossible date', valid({timestamp: '2021-02-30T00:00:00'}), 'invalid_timestamp'],
    ['timestamp an object', valid({timestamp: {}}), 'invalid_timestamp'],
    ['timestamp boolean', valid({timestamp: true}), 'invalid_timestamp'],
    ['no error_code', JSON.stringify({timestamp: 1726667942, device_ip: '10.1.2.3'}), 'missing_error_code'],
    ['error_code fraction', valid({error_code: 1.5}), 'invalid_error_code'],
    ['error_code too big', valid({error_code: 128}), 'invalid_error_code'],
    ['error_code too small', valid({error_code: -129}), 'invalid_error_code'],
    ['error_code a string', valid({error_code: '4'}), 'invalid_error_code'],
  ]
  for (const [name, input, reason] of rejections) {
    it(`rejects ${name} as ${reason}`, () => {
      const result = parseEvent(input)
      expect(result.ok).to.equal(false)
      if (!result.ok) {
        expect(result.reason).to.equal(reason)
        expect(result.detail).to.be.a('string').and.not.equal('')
      }
    })
  }

  it('accepts error_code at both ends of -128..127', () => {
    expect(parseEvent(valid({error_code: -128})).ok).to.equal(true)
    expect(parseEvent(valid({error_code: 127})).ok).to.equal(true)
  })

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 200}), (bytes) => {
        expect(parseEvent(Buffer.from(bytes))).to.have.property('ok')
      }),
      {numRuns: 2000},
    )
    fc.assert(
      fc.property(fc.jsonValue(), fc.anything(), (json, anything) => {
        expect(parseEvent(JSON.stringify(json) ?? '')).to.have.property('ok')
        expect(parseEvent(JSON.stringify({timestamp: anything, device_ip: anything, error_code: anything}) ?? '')).to.have.property('ok')
      }),
      {numRuns: 2000},
    )
  })

  it('survives deeply nested JSON', () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000)
    expect(parseEvent(deep).ok).to.equal(false)
  })
})

describe('parseEvent with deeply nested field values', () => {
  for (const field of ['timestamp', 'device_ip', 'error_code']) {
    it(`gives a reason, not a stack overflow, for a nested ${field}`, () => {
      const deep = '['.repeat(30_000) + ']'.repeat(30_000)
      const fields: Record<string, string> = {timestamp: '1726667942', device_ip: '"10.1.2.3"', error_code: '1'}
      fields[field] = deep
      const text = `{${Object.entries(fields)
        .map(([k, v]) => `"${k}":${v}`)
        .join(',')}}`
      const result = parseEvent(Buffer.from(text))
      expect(result.ok).to.equal(false)
      if (!result.ok) expect(result.reason).to.match(/^invalid_/)
    })
  }
})
