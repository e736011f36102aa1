import {createRequire, Module} from 'node:module'

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
 * beyond 2^53, anything malformed) go through kafkajs's own decoder, record by record or for the
 * whole batch, so that malformed input fails exactly as before. `IPC_KAFKA_RECORD_DECODER=kafkajs`
 * keeps kafkajs's decoder.
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
    const records = count >= 0 ? readRecords(decoder.buffer, start + 4, count, context) : undefined
    if (records) return records
    decoder.offset = start
    return decoder.readArray((recordsDecoder) => decodeRecordStock(new Decoder(recordsDecoder.readVarIntBytes()!), context))
  }

  const count = decoder.readInt32()
  if (count <= 0) return []
  const decompressed = await codec.decompress(decoder.readAll())
  const records = readRecords(decompressed, 0, count, context)
  if (records) return records
  const recordsDecoder = new Decoder(decompressed)
  const stock = new Array<DecodedRecord>(count)
  for (let i = 0; i < count; i++) stock[i] = decodeRecordStock(new Decoder(recordsDecoder.readVarIntBytes()!), context)
  return stock
}

/**
 * `count` length-prefixed records from `buffer` at `start`, or undefined where a record's length
 * is not one kafkajs would read cleanly (the caller then decodes the batch as kafkajs does).
 */
function readRecords(buffer: Buffer, start: number, count: number, context: BatchContext): DecodedRecord[] | undefined {
  if (count > buffer.length - start) return undefined
  const reader = new RecordReader(buffer, start, context)
  const records = new Array<DecodedRecord>(count)
  for (let i = 0; i < count; i++) {
    const length = reader.readVarInt(buffer.length)
    if (length === undefined || length < 0 || reader.position + length > buffer.length) return undefined
    const recordStart = reader.position
    const end = recordStart + length
    records[i] = reader.readRecord(end) ?? decodeRecordStock(new Decoder(buffer.subarray(recordStart, end)), context)
    reader.position = end
  }
  return records
}

/** Kafka's zigzag varint of at most this many bytes fits in 32 bits; a varlong of at most 7, exactly in a double. */
const MAX_VARINT_BYTES = 5
const MAX_EXACT_VARLONG_BYTES = 7

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

  /** A zigzag varlong of at most seven bytes, as a number (exact below 2^49). */
  private readVarLong(end: number): number | undefined {
    let result = 0
    let scale = 1
    let bytes = 0
    let byte: number
    do {
      if (this.position >= end || bytes === MAX_EXACT_VARLONG_BYTES) return undefined
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
