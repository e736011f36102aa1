import {expect} from 'chai'
import {EventGenerator, TIMESTAMP_SHAPES, timestampJson} from '../../src/loadgen/generator.js'
import {parseEvent} from '../../src/events/event.js'

describe('EventGenerator', () => {
  it('emits valid events whose distinct device count it tracks exactly', () => {
    const generator = new EventGenerator({numDevices: 500, seed: 7})
    const seen = new Set<string>()
    for (let i = 0; i < 3000; i++) {
      const {key, value} = generator.next()
      const result = parseEvent(value)
      expect(result.ok, value).to.equal(true)
      if (result.ok) {
        expect(result.event.deviceIp).to.equal(key)
        seen.add(result.event.deviceIp)
      }
    }
    expect(generator.distinctDevices).to.equal(seen.size)
    expect(seen.size).to.be.at.most(500)
  })

  it('gives distinct devices distinct IPs', () => {
    const generator = new EventGenerator({numDevices: 100_000, seed: 3})
    const ips = new Set<string>()
    for (let i = 0; i < 100_000; i++) ips.add(generator.deviceIp(i))
    expect(ips.size).to.equal(100_000)
  })

  it('is reproducible for a seed', () => {
    const end = Date.UTC(2024, 0, 1)
    const a = new EventGenerator({numDevices: 50, seed: 42, endTimeMs: end})
    const b = new EventGenerator({numDevices: 50, seed: 42, endTimeMs: end})
    const c = new EventGenerator({numDevices: 50, seed: 43, endTimeMs: end})
    const take = (g: EventGenerator) => Array.from({length: 20}, () => g.next().value)
    const first = take(a)
    expect(take(b)).to.deep.equal(first)
    expect(take(c)).to.not.deep.equal(first)
  })

  it('renders every timestamp shape so that it parses back to the same millisecond or second', () => {
    const ms = Date.UTC(2024, 8, 18, 14, 14, 10, 124)
    for (const shape of TIMESTAMP_SHAPES) {
      const result = parseEvent(`{"timestamp":${timestampJson(ms, shape)},"device_ip":"10.0.0.1","error_code":0}`)
      expect(result.ok, shape).to.equal(true)
      if (result.ok) expect(ms - result.event.timestampMs, shape).to.be.within(0, 999)
    }
  })

  it('rejects a device count outside 1..2^24', () => {
    expect(() => new EventGenerator({numDevices: 0, seed: 1})).to.throw(/number of devices/)
    expect(() => new EventGenerator({numDevices: 2 ** 24 + 1, seed: 1})).to.throw(/number of devices/)
  })
})
