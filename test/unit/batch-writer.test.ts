import {expect} from 'chai'
import {BackendError, BackendGaveUpError} from '../../src/backends/backend.js'
import {type BatchSink, BatchWriter, type BatchWriterOptions, type WriteBatch} from '../../src/backends/batch-writer.js'
import {until} from '../support/wait.js'

class NumberBatch implements WriteBatch<number> {
  readonly items: number[] = []
  get size(): number {
    return this.items.length
  }

  append(item: number): void {
    this.items.push(item)
  }
}

/** A sink whose writes complete when the test says so (or fail while `failing` is set). */
class ControlledSink implements BatchSink<number, NumberBatch> {
  readonly written: number[][] = []
  readonly started: number[][] = []
  readonly errors: BackendError[] = []
  failing?: Error
  /** What the sink's classification says of its failures. */
  retriable = true
  private finishers: Array<() => void> = []
  autoComplete = false

  newBatch(): NumberBatch {
    return new NumberBatch()
  }

  describe(batch: NumberBatch): string {
    return `writing ${batch.size} items`
  }

  failure(action: string, error: unknown): BackendError {
    if (error instanceof BackendError) return new BackendError(`${error.message}; ${action}`, 'test', 'test://', {retriable: error.retriable})
    return new BackendError(`${action}: ${(error as Error).message}`, 'test', 'test://', {retriable: this.retriable})
  }

  write = async (batch: NumberBatch): Promise<void> => {
    this.started.push([...batch.items])
    if (this.failing) throw this.failing
    if (!this.autoComplete) await new Promise<void>((resolve) => this.finishers.push(resolve))
    this.written.push([...batch.items])
  }

  /** Completes the oldest write in flight. */
  complete(): void {
    this.finishers.shift()?.()
  }
}

const closed = () => new BackendError('closed', 'test', 'test://')

function writer(sink: ControlledSink, overrides: Partial<BatchWriterOptions> = {}): BatchWriter<number, NumberBatch> {
  const batches = new BatchWriter<number, NumberBatch>(sink, {
    batchSize: 10,
    flushIntervalMs: 0,
    retryPolicy: {initialDelayMs: 5, maxDelayMs: 5},
    ...overrides,
  })
  batches.on('write-failed', (error) => sink.errors.push(error))
  return batches
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('BatchWriter', () => {
  it('with no flush interval, writes at once when idle and combines what arrives during a write into the next', async () => {
    const sink = new ControlledSink()
    const batches = writer(sink)
    const first = await batches.add([1, 2])
    await tick()
    expect(sink.started).to.deep.equal([[1, 2]])
    const second = await batches.add([3])
    const third = await batches.add([4, 5])
    await tick()
    expect(sink.started).to.have.length(1)
    let secondDurable = false
    void second.durable.then(() => (secondDurable = true))
    sink.complete()
    await first.durable
    await tick()
    expect(secondDurable).to.equal(false)
    expect(sink.started).to.deep.equal([
      [1, 2],
      [3, 4, 5],
    ])
    sink.complete()
    await Promise.all([second.durable, third.durable])
    expect(sink.written).to.deep.equal([
      [1, 2],
      [3, 4, 5],
    ])
  })

  it('holds add() back once the batch in flight and the next are full, and splits a large add() over batches', async () => {
    const sink = new ControlledSink()
    const batches = writer(sink, {batchSize: 3})
    await batches.add([1, 2, 3])
    let returned = false
    const adding = batches.add([4, 5, 6, 7, 8]).then((receipt) => {
      returned = true
      return receipt
    })
    await tick()
    expect(returned).to.equal(false)
    expect(batches.buffered).to.equal(3)
    sink.complete()
    const receipt = await adding
    expect(sink.started).to.deep.equal([
      [1, 2, 3],
      [4, 5, 6],
    ])
    expect(batches.buffered).to.equal(2)
    sink.autoComplete = true
    sink.complete()
    await receipt.durable
    expect(sink.written).to.deep.equal([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8],
    ])
  })

  it('with a flush interval, writes a partial batch only when the interval passed or flush() asks', async () => {
    const sink = new ControlledSink()
    sink.autoComplete = true
    const batches = writer(sink, {flushIntervalMs: 50})
    const receipt = await batches.add([1, 2, 3])
    await tick()
    expect(sink.started).to.deep.equal([])
    await receipt.durable
    expect(sink.written).to.deep.equal([[1, 2, 3]])
    await batches.add([4])
    await batches.flush()
    expect(sink.written).to.deep.equal([[1, 2, 3], [4]])
  })

  it('retries a failed write, reporting each failure and the recovery as events, and keeps its items', async () => {
    const sink = new ControlledSink()
    sink.autoComplete = true
    sink.failing = new Error('connection refused')
    const batches = writer(sink)
    const recovered: number[] = []
    batches.on('write-recovered', (failedForMs) => recovered.push(failedForMs))
    const receipt = await batches.add([1, 2])
    await until('two failed attempts', () => sink.errors.length >= 2)
    expect(sink.errors[0].message).to.include('writing 2 items (retrying in 5 ms): connection refused')
    expect(recovered, 'no recovery while failing').to.deep.equal([])
    sink.failing = undefined
    await receipt.durable
    expect(sink.written).to.deep.equal([[1, 2]])
    expect(recovered, 'one write-recovered event after the failures').to.have.lengthOf(1)
    expect(recovered[0]).to.be.at.least(5)
    await (
      await batches.add([3])
    ).durable
    expect(recovered, 'none for a write that did not fail').to.have.lengthOf(1)
  })

  it('gives up after maxRetryTimeMs: receipts in flight and buffered reject without further calls, later calls reject', async () => {
    const sink = new ControlledSink()
    sink.failing = new Error('connection refused')
    const batches = writer(sink, {retryPolicy: {initialDelayMs: 5, maxDelayMs: 5, maxRetryTimeMs: 40}})
    const inFlight = await batches.add([1])
    const buffered = await batches.add([2])
    const failure = await inFlight.durable.catch((error: unknown) => error)
    expect(failure).to.be.instanceOf(BackendGaveUpError).with.property('message').that.includes('writing 1 items (gave up): connection refused')
    expect(await buffered.durable.catch((error: unknown) => error)).to.equal(failure)
    expect(await batches.add([3]).catch((error: unknown) => error)).to.equal(failure)
    expect(await batches.flush().catch((error: unknown) => error)).to.equal(failure)
    expect(batches.failure).to.equal(failure)
  })

  it('gives up at once on a failure the sink does not call retriable', async () => {
    const sink = new ControlledSink()
    sink.failing = new Error('wrong type')
    sink.retriable = false
    const batches = writer(sink)
    const gaveUp: BackendError[] = []
    batches.on('write-gave-up', (error) => gaveUp.push(error))
    const receipt = await batches.add([1])
    expect(await receipt.durable.catch((error: unknown) => (error as Error).message)).to.include('(gave up): wrong type')
    expect(sink.started).to.have.length(1)
    expect(gaveUp.map((error) => error.message)).to.have.lengthOf(1)
    expect(gaveUp[0].message).to.include('(gave up): wrong type')
    // Nothing was retried: the failure itself, not a give-up after retries.
    expect(gaveUp[0]).to.be.instanceOf(BackendError).and.not.be.instanceOf(BackendGaveUpError)
  })

  it('reports each write with its items and duration, and counts the items not yet written', async () => {
    const sink = new ControlledSink()
    const batches = writer(sink)
    const written: Array<[number, number]> = []
    batches.on('written', (items, durationMs) => written.push([items, durationMs]))
    const first = await batches.add([1, 2, 3])
    await batches.add([4, 5])
    expect(batches.unwritten, 'three in flight, two buffered').to.equal(5)
    sink.complete()
    await first.durable
    await until('the second write in flight', () => sink.started.length === 2)
    expect(batches.unwritten).to.equal(2)
    sink.complete()
    await batches.flush()
    expect(batches.unwritten).to.equal(0)
    expect(written.map(([items]) => items)).to.deep.equal([3, 2])
    expect(written.every(([, durationMs]) => durationMs >= 0)).to.equal(true)
  })

  it('close() stops retrying a failing write: its receipt and close() reject, add() refuses', async () => {
    const sink = new ControlledSink()
    sink.failing = new Error('connection refused')
    const batches = writer(sink)
    const receipt = await batches.add([1])
    await until('a failed attempt', () => sink.errors.length >= 1)
    const closing = await batches.close(closed()).catch((error: unknown) => error)
    expect(closing).to.be.instanceOf(BackendGaveUpError).with.property('message').that.includes('closed')
    expect(await receipt.durable.catch((error: unknown) => error)).to.equal(closing)
    expect(await batches.add([2]).catch((error: unknown) => error)).to.equal(closing)
  })

  it('close() gives what is buffered one attempt: a failure rejects close() and the receipt, nothing is retried', async () => {
    const sink = new ControlledSink()
    sink.autoComplete = true
    sink.failing = new Error('connection refused')
    const batches = writer(sink, {flushIntervalMs: 60_000})
    const receipt = await batches.add([1, 2])
    const closing = await batches.close(closed()).catch((error: unknown) => error)
    expect(closing).to.be.instanceOf(BackendError).with.property('message').that.includes('connection refused')
    expect(await receipt.durable.catch((error: unknown) => error)).to.equal(closing)
    expect(sink.started).to.deep.equal([[1, 2]])
    expect(sink.errors, 'no retry announced').to.deep.equal([])
  })

  it('emits write-gave-up once, with the error the receipts reject with', async () => {
    const sink = new ControlledSink()
    sink.failing = new Error('connection refused')
    const batches = writer(sink, {retryPolicy: {initialDelayMs: 5, maxDelayMs: 5, maxRetryTimeMs: 20}})
    const gaveUp: BackendError[] = []
    batches.on('write-gave-up', (error) => gaveUp.push(error))
    const receipt = await batches.add([1])
    const failure = await receipt.durable.catch((error: unknown) => error)
    await batches.close(closed())
    expect(gaveUp).to.deep.equal([failure])
  })

  it('close() writes what is buffered, then refuses add()', async () => {
    const sink = new ControlledSink()
    sink.autoComplete = true
    const batches = writer(sink, {flushIntervalMs: 60_000})
    await batches.add([1, 2])
    await batches.close(closed())
    expect(sink.written).to.deep.equal([[1, 2]])
    expect(await batches.add([3]).catch((error: unknown) => (error as Error).message)).to.equal('closed')
  })
})
