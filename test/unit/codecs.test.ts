import {createRequire} from 'node:module'
import {expect} from 'chai'
import {compressSync as rawSnappy} from 'snappy'
import {
  COMPRESSION_NAMES,
  type CompressionName,
  compressionType,
  holdsRecords,
  isXerialFramed,
  registerCompressionCodecs,
  snappyDecode,
  snappyEncode,
  undecodableReason,
} from '../../src/kafka/codecs.js'

/**
 * The codecs through kafkajs's own record batch encoder and decoder: what the consumer's fetch
 * decodes, without a broker.
 */

const require = createRequire(import.meta.url)
const {RecordBatch} = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (batch: {compression: number; firstOffset?: unknown; records: unknown[]}) => Promise<{buffer: Buffer}>
}
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: {offsetDelta: number; key: Buffer | null; value: Buffer}) => unknown
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
  firstOffset: string
  records: Array<{offset: string; value: Buffer | null}>
}>
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown
const Long = require('kafkajs/src/utils/long.js') as {fromValue: (value: number) => unknown}

const VALUES = Array.from({length: 300}, (_, i) => JSON.stringify({timestamp: 1_700_000_000_000 + i, device_ip: `10.0.${i % 7}.${i}`, error_code: i % 10}))

/** A record batch as a fetch response carries it (first offset 1000), with kafkajs's encoder. */
async function encodedBatch(compression: CompressionName): Promise<Buffer> {
  const records = VALUES.map((value, offsetDelta) => Record({offsetDelta, key: null, value: Buffer.from(value)}))
  const {buffer} = await RecordBatch({compression: compressionType(compression), firstOffset: Long.fromValue(1000), records})
  return buffer
}

/** Offset of the compressed records in an encoded batch: the 61-byte header (with the record count) comes first. */
const RECORDS_START = 61
/** Offset of the attributes' low byte, where the codec bits are. */
const ATTRIBUTES_LOW_BYTE = 22

describe('compression codecs (kafkajs encoder and decoder)', () => {
  before(() => registerCompressionCodecs())

  for (const name of COMPRESSION_NAMES) {
    it(`${name}: a batch round-trips through kafkajs's encoder and decoder`, async () => {
      const batch = await encodedBatch(name)
      expect(batch[ATTRIBUTES_LOW_BYTE] & 0x07).to.equal(compressionType(name))
      const decoded = await decodeRecordBatch(new Decoder(batch))
      expect(decoded.records.map((record) => String(record.value))).to.deep.equal(VALUES)
      expect(decoded.records.at(-1)!.offset).to.equal('1299')
    })
  }

  for (const name of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`${name}: a corrupt batch decodes to records that carry the reason, at the batch's offsets`, async () => {
      const batch = await encodedBatch(name)
      // The middle of the compressed data, past any frame header.
      for (let i = RECORDS_START + 8; i < batch.length - 4; i += 3) batch[i] ^= 0x5a
      const decoded = await decodeRecordBatch(new Decoder(batch))
      expect(decoded.records).to.have.length(VALUES.length)
      expect(decoded.records[0].offset).to.equal('1000')
      expect(decoded.records.at(-1)!.offset).to.equal('1299')
      const reason = undecodableReason(decoded.records[0].value)
      expect(reason).to.match(new RegExp(`^the ${name} batch does not decompress \\(.+\\)$`))
    })
  }

  it('a batch naming codec 5, which Kafka does not define, decodes to records that say so', async () => {
    const batch = await encodedBatch('zstd')
    batch[ATTRIBUTES_LOW_BYTE] = (batch[ATTRIBUTES_LOW_BYTE] & ~0x07) | 5
    const decoded = await decodeRecordBatch(new Decoder(batch))
    expect(decoded.records).to.have.length(VALUES.length)
    expect(undecodableReason(decoded.records[5].value)).to.equal('the batch names compression codec 5, which Kafka does not define')
  })

  it('values producers write are never taken for an unreadable batch', () => {
    expect(undecodableReason(null)).to.equal(undefined)
    expect(undecodableReason(Buffer.alloc(0))).to.equal(undefined)
    expect(undecodableReason(Buffer.from('\u0000{"device_ip":"10.0.0.1"}'))).to.equal(undefined)
    expect(undecodableReason(Buffer.from(VALUES[0]))).to.equal(undefined)
  })
})

describe('snappy framing', () => {
  const data = Buffer.from(VALUES.join('\n').repeat(40))

  it("writes xerial's framing, as the Java client, in blocks of 32 KiB, and reads it back", async () => {
    const framed = await snappyEncode(data)
    expect(isXerialFramed(framed)).to.equal(true)
    expect(framed.readInt32BE(8)).to.equal(1)
    expect(data.length).to.be.greaterThan(3 * 32 * 1024)
    expect((await snappyDecode(framed)).equals(data)).to.equal(true)
  })

  it('reads raw snappy, as librdkafka writes it', async () => {
    const raw = rawSnappy(data)
    expect(isXerialFramed(raw)).to.equal(false)
    expect((await snappyDecode(raw)).equals(data)).to.equal(true)
  })

  it('refuses a xerial block that runs past the data', async () => {
    const framed = (await snappyEncode(data)).subarray(0, 100)
    const refusal = await snappyDecode(framed).catch((error: unknown) => error)
    expect(refusal)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/runs past the data/)
  })
})

describe('holdsRecords', () => {
  it('takes exactly the records of a batch and refuses anything else', () => {
    const lengths = [3, 0, 200, 70_000]
    const varint = (value: number) => {
      const bytes: number[] = []
      let zigzag = value << 1
      while (zigzag > 0x7f) {
        bytes.push((zigzag & 0x7f) | 0x80)
        zigzag >>>= 7
      }
      bytes.push(zigzag)
      return Buffer.from(bytes)
    }
    const records = Buffer.concat(lengths.flatMap((length) => [varint(length), Buffer.alloc(length, 1)]))
    expect(holdsRecords(records, 4)).to.equal(true)
    expect(holdsRecords(records, 3)).to.equal(false)
    expect(holdsRecords(records, 5)).to.equal(false)
    expect(holdsRecords(records.subarray(0, records.length - 1), 4)).to.equal(false)
    expect(holdsRecords(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 1)).to.equal(false)
  })
})
