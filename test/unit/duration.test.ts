import {expect} from 'chai'
import {DurationError, parseDuration} from '../../src/util/duration.js'

describe('parseDuration', () => {
  it('reads ms, s, m, h, d, w and bare milliseconds', () => {
    expect(parseDuration('500ms')).to.equal(500)
    expect(parseDuration('5s')).to.equal(5000)
    expect(parseDuration('1.5s')).to.equal(1500)
    expect(parseDuration('2m')).to.equal(120_000)
    expect(parseDuration('1h')).to.equal(3_600_000)
    expect(parseDuration('7d')).to.equal(604_800_000)
    expect(parseDuration('2w')).to.equal(1_209_600_000)
    expect(parseDuration('250')).to.equal(250)
  })

  it('rejects anything else with a DurationError', () => {
    for (const text of ['', 's', '5 parsecs', '-5s', '5S', '1e3s']) expect(() => parseDuration(text), text).to.throw(DurationError)
  })
})
