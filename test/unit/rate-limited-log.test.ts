import {expect} from 'chai'
import {RateLimitedLog} from '../../src/pipeline/rate-limited-log.js'

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
