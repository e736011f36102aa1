import {expect} from 'chai'
import {IdleTracker} from '../../src/pipeline/idle-tracker.js'

describe('IdleTracker', () => {
  it('is idle once joined and fetching without messages for the time asked', () => {
    const idle = new IdleTracker(5000)
    expect(idle.idleFor(1000, 0), 'not a member yet').to.equal(false)
    idle.joined(0)
    for (let now = 0; now <= 1000; now += 500) idle.fetched(now)
    expect(idle.idleFor(1000, 1000)).to.equal(true)
    expect(idle.idleFor(1001, 1000)).to.equal(false)
  })

  it('counts from the end of the last batch, and never while a batch is in work', () => {
    const idle = new IdleTracker(5000)
    idle.joined(0)
    idle.fetched(0)
    idle.batchStarted()
    idle.fetched(3000)
    expect(idle.idleFor(1000, 3000)).to.equal(false)
    idle.batchEnded(3000)
    idle.fetched(3500)
    expect(idle.idleFor(1000, 3500)).to.equal(false)
    idle.fetched(4000)
    expect(idle.idleFor(1000, 4000)).to.equal(true)
  })

  it('does not count time between generations or while fetches go unanswered', () => {
    const idle = new IdleTracker(5000)
    idle.joined(0)
    idle.fetched(0)
    idle.leftGeneration()
    idle.fetched(10_000)
    expect(idle.idleFor(1000, 10_000), 'rebalancing').to.equal(false)
    idle.joined(10_000)
    idle.fetched(10_000)
    expect(idle.idleFor(20_000, 30_000), 'no answered fetch for 20 s').to.equal(false)
    idle.fetched(30_000)
    expect(idle.idleFor(1000, 30_000), 'idle time starts anew after the gap').to.equal(false)
    idle.fetched(31_000)
    expect(idle.idleFor(1000, 31_000)).to.equal(true)
  })
})
