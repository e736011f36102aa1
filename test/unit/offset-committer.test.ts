import {expect} from 'chai'
import {OffsetCommitter, type TopicPartitionOffset} from '../../src/pipeline/offset-committer.js'

/** A promise with its resolve and reject at hand. */
function deferred(): {promise: Promise<void>; resolve: () => void; reject: (error: Error) => void} {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return {promise, resolve, reject}
}

/** Lets every queued promise callback run (a bounded number of macrotask turns). */
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** A commit function that records each request, and can be held open or made to fail. */
function fakeBroker() {
  const requests: TopicPartitionOffset[][] = []
  let hold: ReturnType<typeof deferred> | undefined
  let failNext: Error | undefined
  return {
    requests,
    holdNext: () => (hold = deferred()),
    failNext: (error: Error) => (failNext = error),
    commit: async (offsets: TopicPartitionOffset[]) => {
      requests.push(offsets)
      if (failNext) {
        const error = failNext
        failNext = undefined
        throw error
      }
      if (hold) {
        const current = hold
        hold = undefined
        await current.promise
      }
    },
  }
}

const offsetsOf = (request: TopicPartitionOffset[]) => request.map(({partition, offset}) => `${partition}@${offset}`).sort()

describe('OffsetCommitter', () => {
  it('commits an offset only once its batch is durable', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const durable = deferred()
    committer.add('t', 0, '10', durable.promise)
    await settle()
    expect(broker.requests).to.deep.equal([])
    durable.resolve()
    await committer.settled()
    expect(broker.requests.map(offsetsOf)).to.deep.equal([['0@10']])
  })

  it('keeps a partition in order: a later batch durable first waits for the earlier one', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const first = deferred()
    const second = deferred()
    committer.add('t', 0, '10', first.promise)
    committer.add('t', 0, '20', second.promise)
    second.resolve()
    await settle()
    expect(broker.requests, 'nothing before the first batch is durable').to.deep.equal([])
    first.resolve()
    await committer.settled()
    expect(broker.requests.flat().map(({offset}) => offset)).to.deep.equal(['10', '20'].slice(broker.requests.length === 1 ? 1 : 0))
    expect(broker.requests.at(-1)!.map(({offset}) => offset)).to.deep.equal(['20'])
  })

  it('does not hold one partition back for another', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const stuck = deferred()
    committer.add('t', 0, '10', stuck.promise)
    committer.add('t', 1, '5', Promise.resolve())
    await settle()
    expect(broker.requests.map(offsetsOf)).to.deep.equal([['1@5']])
    stuck.resolve()
    await committer.settled()
    expect(broker.requests.map(offsetsOf)).to.deep.equal([['1@5'], ['0@10']])
  })

  it('coalesces: while one request is in flight, the latest offset of every partition waits for the next one', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const inFlight = broker.holdNext()
    committer.add('t', 0, '1', Promise.resolve())
    await settle()
    for (let offset = 2; offset <= 50; offset++) committer.add('t', offset % 2, String(offset), Promise.resolve())
    await settle()
    expect(broker.requests).to.have.lengthOf(1)
    inFlight.resolve()
    await committer.settled()
    expect(broker.requests.map(offsetsOf)).to.deep.equal([['0@1'], ['0@50', '1@49']])
  })

  it('reports committed offsets, and a failed request without losing later commits', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const committed: string[][] = []
    const failures: string[] = []
    committer.on('committed', (offsets) => committed.push(offsetsOf(offsets)))
    committer.on('commit-failed', (error, offsets) => failures.push(`${error.message}: ${offsetsOf(offsets).join(',')}`))
    broker.failNext(new Error('NOT_COORDINATOR'))
    committer.add('t', 0, '10', Promise.resolve())
    await committer.settled()
    committer.add('t', 0, '20', Promise.resolve())
    await committer.settled()
    expect(failures).to.deep.equal(['NOT_COORDINATOR: 0@10'])
    expect(committed).to.deep.equal([['0@20']])
  })

  it('a batch that never becomes durable stops its partition there and is reported', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const failed: string[] = []
    committer.on('durable-failed', (error, topic, partition) => {
      failed.push(`${topic}[${partition}]: ${(error as Error).message}`)
      committer.halt()
    })
    const lost = deferred()
    committer.add('t', 0, '10', lost.promise)
    committer.add('t', 0, '20', Promise.resolve())
    lost.reject(new Error('backend gave up'))
    await committer.settled()
    expect(failed).to.deep.equal(['t[0]: backend gave up'])
    expect(broker.requests, 'nothing committed past the lost batch').to.deep.equal([])
  })

  it('after halt() sends nothing more', async () => {
    const broker = fakeBroker()
    const committer = new OffsetCommitter(broker.commit)
    const later = deferred()
    committer.add('t', 0, '10', later.promise)
    committer.halt()
    later.resolve()
    await committer.settled()
    expect(broker.requests).to.deep.equal([])
  })
})
