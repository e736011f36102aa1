import {expect} from 'chai'
import fc from 'fast-check'
import {isIPv4, isIPv6} from 'node:net'
import {normalizeIp} from '../../src/events/ip.js'

describe('normalizeIp', () => {
  it('keeps valid dotted-decimal IPv4 as it is', () => {
    for (const ip of ['10.1.2.3', '0.0.0.0', '255.255.255.255', '192.168.100.1']) expect(normalizeIp(ip)).to.equal(ip)
  })

  it('rejects malformed IPv4', () => {
    for (const ip of [
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '1.2.3.4:80',
      '1..3.4',
      '1.2.3.-4',
      '0x1.2.3.4',
      '',
      '1.2.3.4/24',
    ]) {
      expect(normalizeIp(ip), ip).to.equal(undefined)
    }
  })

  it('normalises IPv6 to RFC 5952 form', () => {
    const cases: Array<[string, string]> = [
      ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8::0:1', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['FE80::1', 'fe80::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ]
    for (const [input, expected] of cases) expect(normalizeIp(input), input).to.equal(expected)
  })

  it('treats an IPv4-mapped IPv6 address as the IPv4 device', () => {
    expect(normalizeIp('::ffff:10.1.2.3')).to.equal('10.1.2.3')
    expect(normalizeIp('::FFFF:0a01:0203')).to.equal('10.1.2.3')
  })

  it('rejects malformed IPv6, zone ids, brackets and ports', () => {
    for (const ip of [
      '::gg',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      'fe80::1%eth0',
      '[::1]',
      '[::1]:80',
      ':::',
      '12345::',
      '1:2:3:4:5:6:7',
      '::1.2.3',
      '::256.1.1.1',
    ]) {
      expect(normalizeIp(ip), ip).to.equal(undefined)
    }
  })

  it('accepts exactly what node:net accepts (without zone ids or leading-zero IPv4) and is idempotent', () => {
    const ipv6 = fc.ipV6()
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), ipv6, fc.string({maxLength: 20})), (text) => {
        const normal = normalizeIp(text)
        const valid = isIPv4(text) || (isIPv6(text) && !text.includes('%'))
        expect(normal !== undefined, text).to.equal(valid)
        if (normal !== undefined) expect(normalizeIp(normal)).to.equal(normal)
      }),
      {numRuns: 3000},
    )
  })

  it('maps every spelling of one IPv6 address to one form', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({min: 0, max: 0xffff}), {minLength: 8, maxLength: 8}), (groups) => {
        const full = groups.map((g) => g.toString(16).padStart(4, '0').toUpperCase()).join(':')
        const short = groups.map((g) => g.toString(16)).join(':')
        expect(normalizeIp(full)).to.equal(normalizeIp(short))
      }),
    )
  })
})
