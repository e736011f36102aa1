import {EventEmitter} from 'node:events'
import {expect} from 'chai'
import type {LagMonitor, LagMonitorEvents, PartitionLag} from '../../src/kafka/lag-monitor.js'
import {CatchUpWatch, KafkaStallError, PartitionPositions} from '../../src/pipeline/catch-up.js'
import {until} from '../support/wait.js'

/** A lag as the monitor reads it: the log's end and the group's commit per partition. */
function lag(partitions: Array<[partition: number, end: number, committed: number]>): PartitionLag[] {
  return partitions.map(([partition, end, committed]) => ({topic: 't', partition, start: 0, end, committed, lag: Math.max(0, end - committed)}))
}

/** A lag monitor whose readings the test sets; `refresh()` fails while `failing`. */
class FakeLag extends EventEmitter<LagMonitorEvents> {
  latest?: PartitionLag[]
  next: PartitionLag[] = []
  failing = false
  reads = 0
  refresh(): Promise<PartitionLag[] | undefined> {
    this.reads++
    if (this.failing) {
      this.emit('lag-failed', new Error('There is no leader for this topic-partition'))
      return Promise.resolve(undefined)
    }
    this.latest = this.next
    this.emit('lag', this.next)
    return Promise.resolve(this.next)
  }
}

describe('PartitionPositions', () => {
  it('counts a partition as read up to where the consumer read, past the group’s commit', () => {
    const positions = new PartitionPositions()
    positions.read(0, 100n)
    expect(positions.behind(lag([[0, 100, 40]]))).to.deep.equal([])
    expect(positions.behind(lag([[0, 130, 40]]))).to.deep.equal([{partition: 0, unread: 30, position: 100n}])
    // Not read yet: from the group's commit.
    expect(positions.behind(lag([[1, 50, 20]]))).to.deep.equal([{partition: 1, unread: 30, position: 20n}])
  })

  it('looks only at the partitions this consumer holds', () => {
    const positions = new PartitionPositions()
    positions.hold([1])
    expect(
      positions.behind(
        lag([
          [0, 10, 0],
          [1, 5, 5],
        ]),
      ),
    ).to.deep.equal([])
  })

  it('calls a partition stalled once it has been behind without moving for the given time', () => {
    const positions = new PartitionPositions()
    positions.read(0, 10n)
    expect(positions.stalled(lag([[0, 50, 0]]), 1000, 5000)).to.deep.equal([])
    expect(positions.stalled(lag([[0, 50, 0]]), 5999, 5000)).to.deep.equal([])
    expect(positions.stalled(lag([[0, 60, 0]]), 6000, 5000)).to.deep.equal([{partition: 0, unread: 50, forMs: 5000}])
    positions.read(0, 20n)
    expect(positions.stalled(lag([[0, 60, 0]]), 7000, 5000), 'it moved').to.deep.equal([])
  })
})

describe('CatchUpWatch', () => {
  let watch: CatchUpWatch | undefined
  afterEach(() => watch?.stop())

  function start(options: {silent: () => boolean; untilIdleMs?: number; stallLimitMs?: number; stallAfterMs?: number; positions?: PartitionPositions}) {
    const monitor = new FakeLag()
    watch = new CatchUpWatch({
      topic: 'events',
      lag: monitor as unknown as LagMonitor,
      positions: options.positions ?? new PartitionPositions(),
      untilIdleMs: options.untilIdleMs ?? 100,
      stallLimitMs: options.stallLimitMs,
      stallAfterMs: options.stallAfterMs,
      silentFor: options.silent,
      busy: () => false,
    })
    const events: string[] = []
    watch.on('caught-up', () => events.push('caught-up'))
    watch.on('stalled', (partitions) => events.push(`stalled ${partitions.map((p) => p.partition).join(',')}`))
    watch.on('gave-up', (error) => events.push(`gave-up ${error.message}`))
    watch.start()
    return {monitor, events}
  }

  it('is caught up when silent and the lag read then shows nothing left to read', async () => {
    const positions = new PartitionPositions()
    positions.read(0, 500n)
    const {monitor, events} = start({silent: () => true, positions})
    monitor.next = lag([[0, 500, 300]])
    await until('caught up', () => events.includes('caught-up'))
    expect(monitor.reads).to.be.at.least(1)
  })

  it('is not idle while silent with events left to read (a leader that answers nothing), nor while the lag cannot be read', async () => {
    const {monitor, events} = start({silent: () => true})
    monitor.next = lag([[0, 500, 300]])
    await until('two lag reads', () => monitor.reads >= 2, 4000)
    monitor.failing = true
    monitor.next = lag([[0, 500, 500]])
    const reads = monitor.reads
    await until('more lag reads', () => monitor.reads >= reads + 2, 4000)
    expect(events).to.not.include('caught-up')
    monitor.failing = false
    await until('caught up once the lag reads 0', () => events.includes('caught-up'), 4000)
  })

  it('is not idle while events arrive', async () => {
    const {monitor, events} = start({silent: () => false})
    monitor.next = lag([[0, 0, 0]])
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(events).to.deep.equal([])
  })

  it('reports a partition that stays behind as stalled, and gives up after the limit with the partitions and the last Kafka error', async () => {
    const {monitor, events} = start({silent: () => true, stallAfterMs: 200, stallLimitMs: 600})
    watch!.kafkaError('Connection error: connect ECONNREFUSED 127.0.0.1:19193')
    monitor.next = lag([
      [0, 10, 10],
      [3, 900, 100],
    ])
    await until('given up', () => events.some((event) => event.startsWith('gave-up')), 6000)
    expect(events).to.include('stalled 3')
    expect(watch!.stallLine([{partition: 3, unread: 800, forMs: 12_000}])).to.equal(
      'kafka: partition events[3] not advancing for 12.0s with 800 events unread (last Kafka error: Connection error: connect ECONNREFUSED 127.0.0.1:19193); still trying',
    )
    expect(watch!.stallLine([])).to.equal('kafka: every partition is advancing again')
    // What the report line and /readyz say meanwhile.
    expect(watch!.stallDescription).to.match(
      /^partition events\[3\] not advancing for [\d.]+m?s \(last Kafka error: Connection error: connect ECONNREFUSED 127\.0\.0\.1:19193\)$/,
    )
    const gaveUp = events.find((event) => event.startsWith('gave-up'))!
    expect(gaveUp).to.match(/--max-retry-time 600ms: partition events\[3\] not advancing for/)
    expect(gaveUp).to.contain('800 events unread; last Kafka error: Connection error: connect ECONNREFUSED 127.0.0.1:19193')
  })

  it('gives up when the lag cannot be read and nothing arrives for the limit', async () => {
    const {monitor, events} = start({silent: () => false, stallLimitMs: 300})
    monitor.failing = true
    await monitor.refresh()
    await until('given up', () => events.some((event) => event.startsWith('gave-up')), 4000)
    expect(events.find((event) => event.startsWith('gave-up'))).to.match(
      /no event arrived and the group's lag on events could not be read \(reading the group's lag: There is no leader/,
    )
  })

  it('a stall error is retriable and names every stalled partition', () => {
    const error = new KafkaStallError(
      'events',
      [
        {partition: 1, unread: 5, forMs: 3000},
        {partition: 2, unread: 7, forMs: 4000},
      ],
      2000,
      undefined,
    )
    expect(error.retriable).to.equal(true)
    expect(error.message).to.contain('partitions events[1], events[2] not advancing for 4.0s (12 events unread)')
  })
})
