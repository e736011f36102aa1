import {createRequire, Module} from 'node:module'
import {undecodableRecordsOf} from './codecs.js'

/**
 * A record batch decoder for kafkajs 2.2.4 that gives exactly what kafkajs's own decoder gives
 * (test/unit/record-batch-decoder.test.ts checks it on generated batches of every codec), with a
 * fraction of the garbage. kafkajs decodes each record through a new Buffer slice and `Decoder`,
 * reads its timestamp delta as ten or so `Long` objects and parses the batch's first offset and
 * timestamp strings again for every record: with 500-byte fetches of JSON events, the garbage
 * collector took 40% of a bare kafkajs consumer's CPU. Here a record costs its key and value
 * views, its offset and timestamp strings and the message object.
 *
 * It is installed in place of kafkajs's module (`src/protocol/recordBatch/v0/decoder.js`) before
 * the first fetch, rather than patched into node_modules, so that the package installed with
 * `npm install -g` has it too. Records the fast path does not cover (headers, deltas or offsets
 * beyond 2^53) go through kafkajs's own decoder once their lengths and counts are checked. A record
 * whose lengths or counts do not fit in its batch (kafkajs does not check the CRC either) does not
 * reach kafkajs's decoder, which reads garbage past it and, with a large header count, never ends:
 * the batch becomes records carrying the reason ({@link undecodableRecordsOf}), which the consumer
 * reports with its topic, partition and offset, as it does a batch that does not decompress.
 * `IPC_KAFKA_RECORD_DECODER=kafkajs` keeps kafkajs's decoder.
 */

const require = createRequire(import.meta.url)

/** The kafkajs release whose decoder this one reproduces. */
const KAFKAJS_VERSION = '2.2.4'
const BATCH_DECODER_MODULE = 'kafkajs/src/protocol/recordBatch/v0/decoder.js'
/** The fetch module that takes the batch decoder when it loads (on the first fetch). */
const FETCH_MESSAGES_MODULE = 'kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js'

interface Int64 {
  toString(): string
}

interface KafkaDecoder {
  buffer: Buffer
  offset: number
  readInt8(): number
  readInt16(): number
  readInt32(): number
  readInt64(): Int64
  readVarIntBytes(): Buffer | null
  readArray<T>(reader: (decoder: KafkaDecoder) => T): T[]
  readAll(): Buffer
  slice(length: number): KafkaDecoder
  forward(length: number): void
}

interface Codec {
  decompress(buffer: Buffer): Promise<Buffer>
}

export interface BatchContext {
  firstOffset: string
  firstTimestamp: string
  partitionLeaderEpoch: number
  inTransaction: boolean
  isControlBatch: boolean
  lastOffsetDelta: number
  producerId: string
  producerEpoch: number
  firstSequence: number
  maxTimestamp: string
  timestampType: number
  magicByte?: number
}

export interface DecodedRecord {
  magicByte: number | undefined
  attributes: number
  timestamp: string
  offset: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, unknown>
  isControlRecord: boolean
  batchContext: BatchContext
}

export type DecodedBatch = Omit<BatchContext, 'magicByte'> & {records: DecodedRecord[]}
export type RecordBatchDecoder = (decoder: KafkaDecoder) => Promise<DecodedBatch>

const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => KafkaDecoder
const {KafkaJSPartialMessageError} = require('kafkajs/src/errors.js') as {KafkaJSPartialMessageError: new (message: string) => Error}
const {lookupCodecByAttributes} = require('kafkajs/src/protocol/message/compression/index.js') as {
  lookupCodecByAttributes: (attributes: number) => Codec | null
}
const decodeRecordStock = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (decoder: KafkaDecoder, context: BatchContext) => DecodedRecord
const TimestampTypes = require('kafkajs/src/protocol/timestampTypes.js') as {LOG_APPEND_TIME: number; CREATE_TIME: number}

const TIMESTAMP_TYPE_FLAG_MASK = 0x8
const TRANSACTIONAL_FLAG_MASK = 0x10
const CONTROL_FLAG_MASK = 0x20

/** kafkajs's `RecordBatchDecoder` with the records read by {@link readRecords}. */
export async function decodeRecordBatch(fetchDecoder: KafkaDecoder): Promise<DecodedBatch> {
  const firstOffset = fetchDecoder.readInt64().toString()
  const length = fetchDecoder.readInt32()
  const decoder = fetchDecoder.slice(length)
  fetchDecoder.forward(length)

  const remainingBytes = Buffer.byteLength(decoder.buffer)
  if (remainingBytes < length) {
    throw new KafkaJSPartialMessageError(`Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`)
  }

  const partitionLeaderEpoch = decoder.readInt32()
  const magicByte = decoder.readInt8()
  decoder.readInt32() // the CRC, which kafkajs does not check either
  const attributes = decoder.readInt16()
  const lastOffsetDelta = decoder.readInt32()
  const firstTimestamp = decoder.readInt64().toString()
  const maxTimestamp = decoder.readInt64().toString()
  const producerId = decoder.readInt64().toString()
  const producerEpoch = decoder.readInt16()
  const firstSequence = decoder.readInt32()

  const recordContext = {
    firstOffset,
    firstTimestamp,
    partitionLeaderEpoch,
    inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
    isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
    lastOffsetDelta,
    producerId,
    producerEpoch,
    firstSequence,
    maxTimestamp,
    timestampType: (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? TimestampTypes.LOG_APPEND_TIME : TimestampTypes.CREATE_TIME,
  }
  const records = await decodeRecords(lookupCodecByAttributes(attributes), decoder, {...recordContext, magicByte})
  return {...recordContext, records}
}

async function decodeRecords(codec: Codec | null, decoder: KafkaDecoder, context: BatchContext): Promise<DecodedRecord[]> {
  if (!codec) {
    const start = decoder.offset
    const count = decoder.buffer.length - start >= 4 ? decoder.buffer.readInt32BE(start) : -2
    if (count === -1) return []
    if (count < 0) {
      decoder.offset = start
      return decoder.readArray((recordsDecoder) => decodeRecordStock(new Decoder(recordsDecoder.readVarIntBytes()!), context))
    }
    return readRecords(decoder.buffer, start + 4, count, context)
  }

  const count = decoder.readInt32()
  if (count <= 0) return []
  return readRecords(await codec.decompress(decoder.readAll()), 0, count, context)
}

/** `count` length-prefixed records from `buffer` at `start`. */
function readRecords(buffer: Buffer, start: number, count: number, context: BatchContext): DecodedRecord[] {
  if (count > buffer.length - start) return undecodable(`its header counts ${count} records in ${buffer.length - start} bytes`, count, context)
  const reader = new RecordReader(buffer, start, context)
  const records = new Array<DecodedRecord>(count)
  for (let i = 0; i < count; i++) {
    const length = reader.readVarInt(buffer.length)
    if (length === undefined || length < 0 || reader.position + length > buffer.length) {
      return undecodable(`record ${i} of ${count} has a length that does not fit in the batch`, count, context)
    }
    const recordStart = reader.position
    const end = recordStart + length
    let record = reader.readRecord(end)
    if (record === undefined) {
      reader.position = recordStart
      if (!reader.isWellFormed(end)) return undecodable(`record ${i} of ${count} has lengths that do not fit in it`, count, context)
      record = decodeRecordStock(new Decoder(buffer.subarray(recordStart, end)), context)
    }
    records[i] = record
    reader.position = end
  }
  return records
}

/** Most records that stand in for a batch that cannot be read (its offsets from the first on). */
const MAX_UNDECODABLE_RECORDS = 100_000

/**
 * In place of a batch that cannot be read: a record per offset it spans (as its header says, within
 * reason), each carrying the reason, so that the consumer stops at the first offset it fetched of
 * the batch, saying where and why.
 */
function undecodable(reason: string, count: number, context: BatchContext): DecodedRecord[] {
  const records = Math.max(1, Math.min(count, context.lastOffsetDelta + 1, MAX_UNDECODABLE_RECORDS))
  return readRecords(undecodableRecordsOf(records, `the record batch is corrupt: ${reason}`), 0, records, context)
}

/** Kafka's zigzag varint of at most this many bytes fits in 32 bits; a varlong of at most 7, exactly in a double. */
const MAX_VARINT_BYTES = 5
const MAX_EXACT_VARLONG_BYTES = 7
/** kafkajs reads a varlong of at most ten bytes. */
const MAX_VARLONG_BYTES = 10

class RecordReader {
  position: number
  private readonly firstOffset: number
  private readonly firstTimestamp: number
  private readonly appendTime: string | undefined

  constructor(
    private readonly buffer: Buffer,
    start: number,
    private readonly context: BatchContext,
  ) {
    this.position = start
    this.firstOffset = Number(context.firstOffset)
    this.firstTimestamp = Number(context.firstTimestamp)
    this.appendTime = context.timestampType === TimestampTypes.LOG_APPEND_TIME && context.maxTimestamp ? context.maxTimestamp : undefined
  }

  /** One record ending at `end`, or undefined if it is not one the fast path reads exactly as kafkajs. */
  readRecord(end: number): DecodedRecord | undefined {
    if (this.position >= end) return undefined
    const attributes = (this.buffer[this.position++] << 24) >> 24
    const timestampDelta = this.readVarLong(end)
    if (timestampDelta === undefined) return undefined
    let timestamp = this.appendTime
    if (timestamp === undefined) {
      const sum = this.firstTimestamp + timestampDelta
      if (!Number.isSafeInteger(this.firstTimestamp) || !Number.isSafeInteger(sum)) return undefined
      timestamp = String(sum)
    }
    const offsetDelta = this.readVarInt(end)
    if (offsetDelta === undefined) return undefined
    const offsetSum = this.firstOffset + offsetDelta
    if (!Number.isSafeInteger(this.firstOffset) || !Number.isSafeInteger(offsetSum)) return undefined
    const key = this.readBytes(end)
    if (key === undefined) return undefined
    const value = this.readBytes(end)
    if (value === undefined) return undefined
    if (this.readVarInt(end) !== 0) return undefined // headers: kafkajs's decoder builds them
    return {
      magicByte: this.context.magicByte,
      attributes,
      timestamp,
      offset: String(offsetSum),
      key,
      value,
      headers: {},
      isControlRecord: this.context.isControlBatch,
      batchContext: this.context,
    }
  }

  /**
   * Whether the record from here to `end` has lengths and counts that fit in it: then kafkajs's
   * decoder reads it without running past it.
   */
  isWellFormed(end: number): boolean {
    if (this.position >= end) return false
    this.position++ // attributes
    if (this.readVarLong(end, MAX_VARLONG_BYTES) === undefined || this.readVarInt(end) === undefined) return false
    if (this.readBytes(end) === undefined || this.readBytes(end) === undefined) return false
    const headers = this.readVarInt(end)
    if (headers === undefined || headers < -1 || headers > (end - this.position) / 2) return false
    for (let header = 0; header < headers; header++) {
      if (this.readBytes(end) === undefined || this.readBytes(end) === undefined) return false
    }
    return true
  }

  /** kafkajs's `readVarInt` (the same arithmetic), for at most five bytes before `end`. */
  readVarInt(end: number): number | undefined {
    let result = 0
    let shift = 0
    let byte: number
    do {
      if (this.position >= end || shift >= MAX_VARINT_BYTES * 7) return undefined
      byte = this.buffer[this.position++]
      result += (byte & 0x7f) << shift
      shift += 7
    } while (byte >= 0x80)
    return (result >>> 1) ^ -(result & 1)
  }

  /** A zigzag varlong of at most `maxBytes` bytes, as a number (exact below 2^49, seven bytes). */
  private readVarLong(end: number, maxBytes = MAX_EXACT_VARLONG_BYTES): number | undefined {
    let result = 0
    let scale = 1
    let bytes = 0
    let byte: number
    do {
      if (this.position >= end || bytes === maxBytes) return undefined
      byte = this.buffer[this.position++]
      result += (byte & 0x7f) * scale
      scale *= 128
      bytes++
    } while (byte >= 0x80)
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2
  }

  private readBytes(end: number): Buffer | null | undefined {
    const length = this.readVarInt(end)
    if (length === undefined || length < -1) return undefined
    if (length === -1) return null
    if (this.position + length > end) return undefined
    const bytes = this.buffer.subarray(this.position, this.position + length)
    this.position += length
    return bytes
  }
}

let stockDecoder: RecordBatchDecoder | undefined

/** kafkajs's own record batch decoder (the module as kafkajs ships it). */
export function kafkajsRecordBatchDecoder(): RecordBatchDecoder {
  return (stockDecoder ??= require(BATCH_DECODER_MODULE) as RecordBatchDecoder)
}

/**
 * Puts {@link decodeRecordBatch} in place of kafkajs's decoder for every client this process makes
 * from then on. Returns whether it is in place: not with another kafkajs release, with
 * `IPC_KAFKA_RECORD_DECODER=kafkajs`, or once kafkajs's fetch has loaded the stock decoder.
 */
export function installRecordBatchDecoder(env: NodeJS.ProcessEnv = process.env): boolean {
  const path = require.resolve(BATCH_DECODER_MODULE)
  if (require.cache[path]?.exports === decodeRecordBatch) return true
  if (env.IPC_KAFKA_RECORD_DECODER === 'kafkajs') return false
  if ((require('kafkajs/package.json') as {version: string}).version !== KAFKAJS_VERSION) return false
  if (require.cache[require.resolve(FETCH_MESSAGES_MODULE)]) return false
  kafkajsRecordBatchDecoder()
  const module = new Module(path)
  module.filename = path
  module.loaded = true
  module.exports = decodeRecordBatch
  require.cache[path] = module
  return true
}
