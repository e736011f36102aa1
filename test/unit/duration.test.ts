import {expect} from 'chai'
import {DurationError, parseDuration} from '../../src/util/duration.js'
import {RateLimitedLog} from '../../src/pipeline/rate-limited-log.js'

describe('parseDuration', () => {
  it('reads ms, s, m, h, d and bare milliseconds', () => {
    expect(parseDuration('500ms')).to.equal(500)
    expect(parseDuration('5s')).to.equal(5000)
    expect(parseDuration('1.5s')).to.equal(1500)
    expect(parseDuration('2m')).to.equal(120_000)
    expect(parseDuration('1h')).to.equal(3_600_000)
    expect(parseDuration('7d')).to.equal(604_800_000)
    expect(parseDuration('250')).to.equal(250)
  })

  it('rejects anything else with a DurationError', () => {
    for (const text of ['', 's', '5 parsecs', '-5s', '5S', '1e3s']) expect(() => parseDuration(text), text).to.throw(DurationError)
  })
})

describe('RateLimitedLog', () => {
  it('logs a few lines per key and interval, then says how many it suppressed', () => {
    const lines: string[] = []
    let now = 0
    const log = new RateLimitedLog(
      (line) => lines.push(line),
      2,
      1000,
      () => now,
    )
    for (let i = 0; i < 5; i++) log.log('bad', `bad ${i}`)
    log.log('other', 'other 0')
    expect(lines).to.deep.equal(['bad 0', 'bad 1', 'other 0'])
    now = 1000
    log.log('bad', 'bad 5')
    expect(lines.slice(3)).to.deep.equal(['bad: 3 more suppressed', 'bad 5'])
    log.log('bad', 'bad 6')
    log.log('bad', 'bad 7')
    log.flush()
    expect(lines.slice(5)).to.deep.equal(['bad 6', 'bad: 1 more suppressed'])
  })
})
