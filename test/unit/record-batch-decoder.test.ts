import {execFile} from 'node:child_process'
import {createRequire} from 'node:module'
import {promisify} from 'node:util'
import {expect} from 'chai'
import fc from 'fast-check'
import kafkajs from 'kafkajs'
import {registerCompressionCodecs, undecodableReason} from '../../src/kafka/codecs.js'
import {decodeRecordBatch, kafkajsRecordBatchDecoder} from '../../src/kafka/record-batch-decoder.js'

/**
 * ipc's record batch decoder against kafkajs's own on generated batches: every codec, both
 * timestamp types, transactional and control batches, headers (repeated keys, null values), null
 * keys and values, offsets and timestamps beyond 2^53 and negative, trailing bytes in a record;
 * then the same batches with bytes overwritten, where both must give the same records or fail
 * with the same error.
 */

const require = createRequire(import.meta.url)
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => Parameters<typeof decodeRecordBatch>[0]
const MAX_INT64 = 2n ** 63n - 1n
const MIN_INT64 = -(2n ** 63n)
/** Where an encoded batch (first offset and length included) holds its record count. */
const RECORD_COUNT_AT = 57

interface TestRecord {
  attributes: number
  timestampDelta: bigint
  offsetDelta: number
  key: Uint8Array | null
  value: Uint8Array | null
  headers: Array<[string, Uint8Array | null]>
  trailing: Uint8Array
}

interface TestBatch {
  firstOffset: bigint
  partitionLeaderEpoch: number
  codec: number
  logAppendTime: boolean
  transactional: boolean
  control: boolean
  lastOffsetDelta: number
  firstTimestamp: bigint
  maxTimestamp: bigint
  producerId: bigint
  producerEpoch: number
  firstSequence: number
  records: TestRecord[]
}

function unsignedVarint(value: bigint): number[] {
  const bytes: number[] = []
  let rest = value
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80)
    rest >>= 7n
  }
  bytes.push(Number(rest))
  return bytes
}

const varint = (value: number): number[] => unsignedVarint(BigInt(((value << 1) ^ (value >> 31)) >>> 0))
const varlong = (value: bigint): number[] => unsignedVarint(BigInt.asUintN(64, (value << 1n) ^ (value >> 63n)))

function bytesField(bytes: Uint8Array | null): number[] {
  return bytes === null ? varint(-1) : [...varint(bytes.length), ...bytes]
}

function encodeRecord(record: TestRecord): number[] {
  const body = [
    record.attributes & 0xff,
    ...varlong(record.timestampDelta),
    ...varint(record.offsetDelta),
    ...bytesField(record.key),
    ...bytesField(record.value),
    ...varint(record.headers.length),
    ...record.headers.flatMap(([key, value]) => [...bytesField(Buffer.from(key)), ...bytesField(value)]),
    ...record.trailing,
  ]
  return [...varint(body.length), ...body]
}

async function encodeBatch(batch: TestBatch): Promise<Buffer> {
  const records = Buffer.from(batch.records.flatMap(encodeRecord))
  const codecs = kafkajs.CompressionCodecs as Record<number, () => {compress(encoder: {buffer: Buffer}): Promise<Buffer>}>
  const codec = batch.codec === 0 ? undefined : codecs[batch.codec]()
  const recordsPart = codec ? await codec.compress({buffer: records}) : records
  const attributes = batch.codec | (batch.logAppendTime ? 0x08 : 0) | (batch.transactional ? 0x10 : 0) | (batch.control ? 0x20 : 0)
  const header = Buffer.alloc(61)
  header.writeBigInt64BE(batch.firstOffset, 0)
  header.writeInt32BE(61 - 12 + recordsPart.length, 8)
  header.writeInt32BE(batch.partitionLeaderEpoch, 12)
  header.writeInt8(2, 16)
  header.writeUInt32BE(0, 17)
  header.writeInt16BE(attributes, 21)
  header.writeInt32BE(batch.lastOffsetDelta, 23)
  header.writeBigInt64BE(batch.firstTimestamp, 27)
  header.writeBigInt64BE(batch.maxTimestamp, 35)
  header.writeBigInt64BE(batch.producerId, 43)
  header.writeInt16BE(batch.producerEpoch, 51)
  header.writeInt32BE(batch.firstSequence, 53)
  header.writeInt32BE(batch.records.length, RECORD_COUNT_AT)
  return Buffer.concat([header, recordsPart])
}

const int64 = fc.oneof(
  fc.bigInt({min: -1n, max: 2n ** 40n}),
  fc.bigInt({min: 2n ** 53n - 1000n, max: 2n ** 53n + 1000n}),
  fc.bigInt({min: MIN_INT64, max: MAX_INT64}),
)
const int32 = fc.integer({min: -(2 ** 31), max: 2 ** 31 - 1})
const bytes = fc.option(fc.uint8Array({maxLength: 40}), {freq: 4})
const testRecord: fc.Arbitrary<TestRecord> = fc.record({
  attributes: fc.integer({min: 0, max: 255}),
  timestampDelta: fc.oneof(
    {weight: 4, arbitrary: fc.bigInt({min: -1000n, max: 100_000n})},
    {weight: 1, arbitrary: fc.bigInt({min: MIN_INT64, max: MAX_INT64})},
  ),
  offsetDelta: fc.oneof({weight: 4, arbitrary: fc.integer({min: 0, max: 5000})}, {weight: 1, arbitrary: int32}),
  key: bytes,
  value: bytes,
  headers: fc.oneof(
    {weight: 4, arbitrary: fc.constant<Array<[string, Uint8Array | null]>>([])},
    {weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom('a', 'b', 'trace-id', '__proto__', 'constructor'), bytes), {maxLength: 4})},
  ),
  trailing: fc.oneof({weight: 6, arbitrary: fc.constant(new Uint8Array())}, {weight: 1, arbitrary: fc.uint8Array({minLength: 1, maxLength: 3})}),
})
const testBatch: fc.Arbitrary<TestBatch> = fc.record({
  firstOffset: int64,
  partitionLeaderEpoch: int32,
  codec: fc.integer({min: 0, max: 4}),
  logAppendTime: fc.boolean(),
  transactional: fc.boolean(),
  control: fc.boolean(),
  lastOffsetDelta: int32,
  firstTimestamp: int64,
  maxTimestamp: int64,
  producerId: int64,
  producerEpoch: fc.integer({min: -1, max: 32767}),
  firstSequence: int32,
  records: fc.array(testRecord, {maxLength: 20}),
})

const execFileAsync = promisify(execFile)
const DECODER_MODULE = new URL('../../src/kafka/record-batch-decoder.js', import.meta.url).href

/** Runs `body` in a new Node process with the decoder module and `require` in scope; returns what it printed. */
async function inFreshProcess(body: string): Promise<unknown> {
  const script = [
    `import {createRequire} from 'node:module'`,
    `import {decodeRecordBatch, installRecordBatchDecoder, kafkajsRecordBatchDecoder} from '${DECODER_MODULE}'`,
    `const require = createRequire(${JSON.stringify(DECODER_MODULE)})`,
    `const print = (value) => process.stdout.write(JSON.stringify(value))`,
    body,
  ].join('\n')
  const {stdout} = await execFileAsync(process.execPath, ['--input-type=module', '-e', script])
  return JSON.parse(stdout) as unknown
}

function typicalRecord(offsetDelta: number): TestRecord {
  return {attributes: 0, timestampDelta: BigInt(offsetDelta), offsetDelta, key: null, value: Buffer.from('{}'), headers: [], trailing: new Uint8Array()}
}

/** Three records from offset 2^53 - 1 on, one millisecond apart. */
function typicalBatch(): TestBatch {
  return {
    firstOffset: 2n ** 53n - 1n,
    partitionLeaderEpoch: 0,
    codec: 0,
    logAppendTime: false,
    transactional: false,
    control: false,
    lastOffsetDelta: 2,
    firstTimestamp: 1_700_000_000_000n,
    maxTimestamp: 1_700_000_000_002n,
    producerId: -1n,
    producerEpoch: -1,
    firstSequence: -1,
    records: [0, 1, 2].map(typicalRecord),
  }
}

/** The reasons carried by records that stand in for a batch that could not be read (as hex, see {@link outcome}). */
function unreadableReasons(records: unknown): string[] {
  const values = ((records as {records?: Array<{value: string | null}>}).records ?? []).map((record) => record.value)
  return values.flatMap((value) => {
    const reason = value === null ? undefined : undecodableReason(Buffer.from(value, 'hex'))
    return reason === undefined ? [] : [reason]
  })
}

type Outcome = {records: unknown} | {error: string}

/** What a decoder makes of `buffer`, with the Buffers as hex so that two outcomes compare deeply. */
async function outcome(decode: typeof decodeRecordBatch, buffer: Buffer): Promise<Outcome> {
  try {
    const batch = await decode(new Decoder(buffer))
    return {records: JSON.parse(JSON.stringify(batch, (_, value: unknown) => (isSerializedBuffer(value) ? Buffer.from(value.data).toString('hex') : value)))}
  } catch (error) {
    return {error: `${(error as Error).name}: ${(error as Error).message}`}
  }
}

function isSerializedBuffer(value: unknown): value is {type: 'Buffer'; data: number[]} {
  return typeof value === 'object' && value !== null && (value as {type?: unknown}).type === 'Buffer'
}

describe('record batch decoder', () => {
  before(() => registerCompressionCodecs())

  it('decodes generated batches of every codec exactly as kafkajs does', async () => {
    await fc.assert(
      fc.asyncProperty(testBatch, async (batch) => {
        const buffer = await encodeBatch(batch)
        const ours = await outcome(decodeRecordBatch, buffer)
        expect(ours).to.have.property('records')
        expect(ours).to.deep.equal(await outcome(kafkajsRecordBatchDecoder(), buffer))
      }),
      {numRuns: 400},
    )
  })

  it("reads batches with bytes overwritten as kafkajs does, or marks them unreadable where a record's lengths do not fit", async () => {
    let unreadable = 0
    await fc.assert(
      fc.asyncProperty(
        testBatch.filter((batch) => batch.codec === 0),
        fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 4}),
        async (batch, overwrites) => {
          const buffer = await encodeBatch(batch)
          for (const [at, byte] of overwrites) {
            const position = 12 + (at % (buffer.length - 12))
            // A record count in the millions costs both decoders seconds; the case after this one has it.
            if (position < RECORD_COUNT_AT || position >= RECORD_COUNT_AT + 4) buffer[position] = byte
          }
          const ours = await outcome(decodeRecordBatch, buffer)
          const reasons = 'records' in ours ? unreadableReasons(ours.records) : []
          if (reasons.some((reason) => reason.startsWith('the record batch is corrupt: '))) {
            // kafkajs's decoder would read past the record, and with a large header count never end.
            unreadable++
            return
          }
          expect(ours).to.deep.equal(await outcome(kafkajsRecordBatchDecoder(), buffer))
        },
      ),
      {numRuns: 400},
    )
    expect(unreadable).to.be.greaterThan(0)
  })

  it('marks a batch unreadable at its first offset when a record claims more headers than it has bytes, where kafkajs would not return', async () => {
    const batch: TestBatch = {...typicalBatch(), lastOffsetDelta: 1, records: [typicalRecord(0), {...typicalRecord(1), headers: [['a', Buffer.from('x')]]}]}
    const buffer = await encodeBatch(batch)
    const headerCountAt = buffer.lastIndexOf(Buffer.from([2, 2, 0x61, 2, 0x78])) // one header: count 1, key "a", value "x"
    expect(headerCountAt).to.be.greaterThan(0)
    buffer.set([0xfe, 0xff, 0xff, 0xff, 0x0f].slice(0, 1), headerCountAt) // count 127 in a record of a few bytes
    const decoded = await decodeRecordBatch(new Decoder(buffer))
    expect(decoded.records.map((record) => record.offset)).to.deep.equal(['9007199254740991', '9007199254740992'])
    expect(undecodableReason(decoded.records[0].value)).to.match(/^the record batch is corrupt: record 1 of 2 has lengths that do not fit in it/)
  })

  it('marks a batch whose header counts more records than it holds unreadable, with every codec', async () => {
    await fc.assert(
      fc.asyncProperty(testBatch, fc.oneof(fc.integer({min: 1, max: 3}), fc.constant(2 ** 20)), async (generated, extra) => {
        // As a producer writes it: the offsets span the records.
        const batch = {...generated, lastOffsetDelta: Math.max(0, generated.records.length - 1)}
        const buffer = await encodeBatch(batch)
        buffer.writeInt32BE(batch.records.length + extra, RECORD_COUNT_AT)
        const ours = await outcome(decodeRecordBatch, buffer)
        expect(ours).to.have.property('records')
        const records = (ours as {records: {records: unknown[]}}).records.records
        expect(unreadableReasons((ours as {records: unknown}).records))
          .to.have.length(records.length)
          .and.to.have.length.greaterThan(0)
      }),
      {numRuns: 30},
    )
  })

  it('reads the offsets and timestamps of a typical batch as strings beyond 2^53 too', async () => {
    const decoded = await decodeRecordBatch(new Decoder(await encodeBatch(typicalBatch())))
    expect(decoded.records.map((each) => each.offset)).to.deep.equal(['9007199254740991', '9007199254740992', '9007199254740993'])
    expect(decoded.records.map((each) => each.timestamp)).to.deep.equal(['1700000000000', '1700000000001', '1700000000002'])
  })

  // In a process of its own: whether kafkajs's fetch has loaded its decoder depends on what ran before.
  it("takes the place of kafkajs's decoder for the clients made after it is installed, and only then", async () => {
    const installedBeforeFetch = await inFreshProcess(`
      const kafkajsKept = installRecordBatchDecoder({IPC_KAFKA_RECORD_DECODER: 'kafkajs'})
      const installed = installRecordBatchDecoder({})
      const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js')
      const used = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') === decodeRecordBatch
      print({kafkajsKept, installed, used, stock: kafkajsRecordBatchDecoder() !== decodeRecordBatch, decodeMessages: typeof decodeMessages})`)
    expect(installedBeforeFetch).to.deep.equal({kafkajsKept: false, installed: true, used: true, stock: true, decodeMessages: 'function'})
    const afterFetch = await inFreshProcess(`
      require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js')
      print({installed: installRecordBatchDecoder({}), used: require('kafkajs/src/protocol/recordBatch/v0/decoder.js') === decodeRecordBatch})`)
    expect(afterFetch).to.deep.equal({installed: false, used: false})
  })
})
