import {promisify} from 'node:util'
import {gunzipSync, gzip} from 'node:zlib'
import kafkajs from 'kafkajs'

/**
 * The compression codecs Kafka defines (the record batch attribute's low three bits), registered
 * with kafkajs's codec registry, which ships gzip alone. Every codec reads what Apache Kafka's Java
 * client and librdkafka (kcat) write:
 *
 * - gzip: Node's zlib, inflated synchronously (see {@link GUNZIP_OPTIONS}).
 * - snappy: `snappy` (napi-rs, prebuilt binaries as npm packages). The Java client writes snappy in
 *   xerial's framing (a magic header, then length-prefixed blocks), librdkafka raw snappy; both are
 *   read, and ipc writes xerial's framing as the Java client does.
 * - lz4: `lz4-napi` (napi-rs over lz4_flex): the LZ4 frame format, which is Kafka's since message
 *   format 1 (KIP-57).
 * - zstd: `@mongodb-js/zstd` 1.x (napi-rs over the zstd crate, prebuilt): reads frames without a
 *   content size, as the Java client's streaming encoder writes them.
 *
 * A batch that does not decompress, or that names a codec Kafka does not define (5–7), does not
 * crash the client: its records are replaced by {@link undecodableRecords}, which the consumer
 * turns into an {@link UnreadableBatchError} naming the topic, partition and offset, which
 * kafkajs's decoder does not know.
 */

export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
export type CompressionName = (typeof COMPRESSION_NAMES)[number]

const {CompressionCodecs, CompressionTypes} = kafkajs

/** kafkajs's compression type for a name as kcat (`-z`) and the Java client (`compression.type`) spell it. */
export function compressionType(name: CompressionName): kafkajs.CompressionTypes {
  switch (name) {
    case 'none':
      return CompressionTypes.None
    case 'gzip':
      return CompressionTypes.GZIP
    case 'snappy':
      return CompressionTypes.Snappy
    case 'lz4':
      return CompressionTypes.LZ4
    case 'zstd':
      return CompressionTypes.ZSTD
  }
}

interface Codec {
  compress(encoder: {buffer: Buffer}): Promise<Buffer>
  decompress(buffer: Buffer): Promise<Buffer>
}

const gzipAsync = promisify(gzip)
/**
 * Batches are inflated on the calling thread in 256 KiB steps: zlib's asynchronous call (the thread
 * pool, 16 KiB steps) cost 0.5 µs of CPU per event here against 0.1 for this.
 */
const GUNZIP_OPTIONS = {chunkSize: 256 * 1024}

/** A module loaded on its first use, once. */
function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined
  return () => (loaded ??= load())
}

// The native libraries load with the first batch of their codec: together they cost about 35 ms of
// CPU, which every command importing the Kafka client (or the exit codes) would pay at start-up.
const snappyLibrary = onFirstUse(() => import('snappy'))
const lz4Library = onFirstUse(() => import('lz4-napi'))
const zstdLibrary = onFirstUse(() => import('@mongodb-js/zstd'))

/** xerial snappy-java's stream header: magic, then format version 1 and minimum compatible version 1. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const XERIAL_HEADER_LENGTH = 16
/** snappy-java's default block size. */
const XERIAL_BLOCK_SIZE = 32 * 1024

export function isXerialFramed(buffer: Buffer): boolean {
  return buffer.length >= XERIAL_HEADER_LENGTH && buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)
}

export class CompressedDataError extends Error {
  override name = 'CompressedDataError'
  readonly retriable = false
}

/** snappy: xerial-framed (Java client) or raw (librdkafka). */
export async function snappyDecode(buffer: Buffer): Promise<Buffer> {
  const {uncompressSync: snappyUncompress} = await snappyLibrary()
  if (!isXerialFramed(buffer)) return snappyUncompress(buffer) as Buffer
  const blocks: Buffer[] = []
  let position = XERIAL_HEADER_LENGTH
  while (position < buffer.length) {
    if (position + 4 > buffer.length) throw new CompressedDataError('snappy: truncated xerial block length')
    const length = buffer.readInt32BE(position)
    position += 4
    if (length < 0 || position + length > buffer.length) throw new CompressedDataError(`snappy: xerial block of ${length} bytes runs past the data`)
    blocks.push(snappyUncompress(buffer.subarray(position, position + length)) as Buffer)
    position += length
  }
  return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks)
}

/** snappy in xerial's framing, as the Java client writes it. */
export async function snappyEncode(buffer: Buffer): Promise<Buffer> {
  const {compressSync: snappyCompress} = await snappyLibrary()
  const header = Buffer.alloc(XERIAL_HEADER_LENGTH)
  XERIAL_MAGIC.copy(header)
  header.writeInt32BE(1, 8)
  header.writeInt32BE(1, 12)
  const parts: Buffer[] = [header]
  for (let position = 0; position < buffer.length; position += XERIAL_BLOCK_SIZE) {
    const block = snappyCompress(buffer.subarray(position, position + XERIAL_BLOCK_SIZE))
    const length = Buffer.alloc(4)
    length.writeInt32BE(block.length)
    parts.push(length, block)
  }
  return Buffer.concat(parts)
}

const CODECS: Record<Exclude<CompressionName, 'none'>, Codec> = {
  gzip: {compress: (encoder) => gzipAsync(encoder.buffer), decompress: async (buffer) => gunzipSync(buffer, GUNZIP_OPTIONS)},
  snappy: {compress: (encoder) => snappyEncode(encoder.buffer), decompress: (buffer) => snappyDecode(buffer)},
  lz4: {
    compress: async (encoder) => (await lz4Library()).compressFrameSync(encoder.buffer),
    decompress: async (buffer) => (await lz4Library()).decompressFrameSync(buffer),
  },
  zstd: {
    compress: async (encoder) => (await zstdLibrary()).compress(encoder.buffer, 3),
    decompress: async (buffer) => (await zstdLibrary()).decompress(buffer),
  },
}

/**
 * A value no producer writes (a NUL, then a tag): the records of a batch that could not be read
 * carry it, with the reason after the tag.
 */
const UNDECODABLE_TAG = Buffer.from('\u0000ipc:undecodable-batch:')

/** The reason a batch could not be read, if `value` is one of {@link undecodableRecords}'s values. */
export function undecodableReason(value: Buffer | null): string | undefined {
  if (value === null || value.length < UNDECODABLE_TAG.length || value[0] !== 0) return undefined
  if (!value.subarray(0, UNDECODABLE_TAG.length).equals(UNDECODABLE_TAG)) return undefined
  return value.subarray(UNDECODABLE_TAG.length).toString()
}

/**
 * kafkajs decodes a compressed batch as `count` records read from what the codec returns, `count`
 * being the four bytes just before the compressed data (the batch header's record count; kafkajs
 * hands the codec a view of the fetch response). Returns `count` records in Kafka's record format
 * whose values carry the reason, so the batch reaches the consumer with its topic, partition and
 * offsets. Without a plausible count, throws: the client crashes with the reason, without a place.
 */
export function undecodableRecords(compressed: Buffer, reason: string): Buffer {
  const count = recordCountBefore(compressed)
  if (count === undefined) throw new CompressedDataError(reason)
  return undecodableRecordsOf(count, reason)
}

/** `count` records (offset deltas 0 to count - 1) in Kafka's record format whose values carry `reason`. */
export function undecodableRecordsOf(count: number, reason: string): Buffer {
  const value = Buffer.concat([UNDECODABLE_TAG, Buffer.from(reason.slice(0, 500))])
  const records: Buffer[] = []
  for (let offsetDelta = 0; offsetDelta < count; offsetDelta++) {
    // attributes 0, timestamp delta 0, offset delta, key null (-1), the value, no headers
    const body = Buffer.concat([Buffer.from([0, 0]), varint(offsetDelta), varint(-1), varint(value.length), value, varint(0)])
    records.push(varint(body.length), body)
  }
  return Buffer.concat(records)
}

/** Batches hold at most this many records here (a batch of 1 MB of empty records). */
const MAX_PLAUSIBLE_RECORDS = 1_000_000

function recordCountBefore(compressed: Buffer): number | undefined {
  if (compressed.byteOffset < 4) return undefined
  const count = new DataView(compressed.buffer, compressed.byteOffset - 4, 4).getInt32(0)
  return count > 0 && count <= MAX_PLAUSIBLE_RECORDS ? count : undefined
}

/** A zigzag varint, as Kafka's record format writes its lengths and deltas. */
function varint(value: number): Buffer {
  let zigzag = (value << 1) ^ (value >> 31)
  const bytes: number[] = []
  while ((zigzag & ~0x7f) !== 0) {
    bytes.push((zigzag & 0x7f) | 0x80)
    zigzag >>>= 7
  }
  bytes.push(zigzag)
  return Buffer.from(bytes)
}

/**
 * Whether `records` holds exactly `count` length-prefixed records. snappy and lz4 carry no checksum
 * in Kafka's framing: corrupt data can decompress to garbage, which kafkajs's record decoder would
 * throw on without saying where.
 */
export function holdsRecords(records: Buffer, count: number): boolean {
  let position = 0
  for (let record = 0; record < count; record++) {
    let zigzag = 0
    let shift = 0
    let byte: number
    do {
      if (position >= records.length || shift > 28) return false
      byte = records[position++]
      zigzag |= (byte & 0x7f) << shift
      shift += 7
    } while (byte & 0x80)
    const length = (zigzag >>> 1) ^ -(zigzag & 1)
    if (length < 0) return false
    position += length
  }
  return position === records.length
}

function guarded(name: string, codec: Codec): Codec {
  return {
    compress: codec.compress,
    async decompress(buffer) {
      let records: Buffer
      try {
        records = await codec.decompress(buffer)
      } catch (error) {
        const cause = error instanceof Error ? error.message : String(error)
        return undecodableRecords(buffer, `the ${name} batch does not decompress (${cause})`)
      }
      const count = recordCountBefore(buffer)
      if (count !== undefined && !holdsRecords(records, count)) {
        return undecodableRecords(buffer, `the ${name} batch decompresses to data that is not its ${count} records`)
      }
      return records
    },
  }
}

/**
 * A record batch the consumer cannot read: it does not decompress, or names a codec Kafka does not
 * define. The consumer stores and commits what came before it and stops; nothing at or past
 * `offset` is committed, so a run after the topic is repaired (or the offset moved past it on
 * purpose) starts there.
 */
export class UnreadableBatchError extends Error {
  override name = 'UnreadableBatchError'
  readonly retriable = false
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    readonly reason: string,
  ) {
    super(`cannot read ${topic}[${partition}] at offset ${offset}: ${reason}; nothing from this offset on is committed`)
  }
}

let registered = false

/** Registers every codec with kafkajs, once per process (kafkajs's registry is its module's). */
export function registerCompressionCodecs(): void {
  if (registered) return
  registered = true
  const registry = CompressionCodecs as unknown as Record<number, () => Codec>
  for (const [name, codec] of Object.entries(CODECS)) {
    const checked = guarded(name, codec)
    registry[compressionType(name as CompressionName)] = () => checked
  }
  // The attribute's codec bits can say 5, 6 or 7, which no Kafka version defines.
  for (const unknown of [5, 6, 7]) {
    const codec: Codec = {
      compress: () => Promise.reject(new CompressedDataError(`compression codec ${unknown} is not defined by Kafka`)),
      decompress: async (buffer) => undecodableRecords(buffer, `the batch names compression codec ${unknown}, which Kafka does not define`),
    }
    registry[unknown] = () => codec
  }
}
