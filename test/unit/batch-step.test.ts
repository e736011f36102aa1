import {createRequire} from 'node:module'
import {expect} from 'chai'
import type {KafkaMessage} from 'kafkajs'
import {registerCompressionCodecs, UnreadableBatchError} from '../../src/kafka/codecs.js'
import {type BatchInput, readBatch} from '../../src/pipeline/batch-step.js'

function message(offset: number, value: string | Buffer | null): KafkaMessage {
  return {
    offset: String(offset),
    key: Buffer.from('k'),
    value: typeof value === 'string' ? Buffer.from(value) : value,
    timestamp: '0',
    attributes: 0,
    headers: {},
  } as KafkaMessage
}

const valid = (offset: number, ip: string) => message(offset, JSON.stringify({timestamp: 1_726_668_850_124, device_ip: ip, error_code: 3}))

function input(messages: KafkaMessage[], overrides: Partial<BatchInput> = {}): BatchInput {
  return {topic: 'events', partition: 2, messages, lastOffset: () => '107', limit: Infinity, deadLetters: false, isRunning: () => true, ...overrides}
}

/** Records a corrupt zstd batch decodes to, through kafkajs's decoder and ipc's codecs. */
async function unreadableMessages(firstOffset: number, count: number): Promise<KafkaMessage[]> {
  registerCompressionCodecs()
  const require = createRequire(import.meta.url)
  const {RecordBatch} = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
    RecordBatch: (batch: {compression: number; firstOffset: unknown; records: unknown[]}) => Promise<{buffer: Buffer}>
  }
  const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: {offsetDelta: number; key: null; value: Buffer}) => unknown
  const decode = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{records: KafkaMessage[]}>
  const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown
  const Long = require('kafkajs/src/utils/long.js') as {fromValue: (value: number) => unknown}
  const records = Array.from({length: count}, (_, offsetDelta) => Record({offsetDelta, key: null, value: Buffer.from(`{"n":${offsetDelta}}`)}))
  const {buffer} = await RecordBatch({compression: 4, firstOffset: Long.fromValue(firstOffset), records})
  buffer.fill(0x33, 61 + 8, buffer.length - 2)
  return (await decode(new Decoder(buffer))).records
}

describe('readBatch: one batch validated, without I/O', () => {
  it('keeps valid events with their Kafka source and invalid ones by reason, and resolves to the batch’s last offset', () => {
    const step = readBatch(
      input([valid(100, '10.0.0.1'), message(101, 'not json'), message(102, null), valid(103, '010.0.0.1'), valid(104, '::FFFF:10.0.0.2')]),
    )
    expect(step.processed).to.equal(5)
    expect(step.events.map((event) => [event.deviceIp, event.source])).to.deep.equal([
      ['10.0.0.1', {topic: 'events', partition: 2, offset: '100'}],
      ['10.0.0.2', {topic: 'events', partition: 2, offset: '104'}],
    ])
    expect(step.invalidByReason).to.deep.equal({invalid_json: 1, empty_message: 1, invalid_device_ip: 1})
    expect(step.invalid.map((invalid) => invalid.offset)).to.deep.equal(['101', '102', '103'])
    expect(step.deadLetters).to.deep.equal([])
    // 105-107 are transaction markers: a batch read to its end is resolved past them.
    expect(step.lastOffset).to.equal('107')
    expect(step.unreadable).to.equal(undefined)
  })

  it('makes dead letters of the invalid messages when asked, with the reason in headers', () => {
    const step = readBatch(input([message(5, '[1]'), valid(6, '10.0.0.1')], {deadLetters: true}))
    expect(step.deadLetters).to.have.length(1)
    expect(step.deadLetters[0].headers).to.include({'ipc.error.reason': 'not_an_object', 'ipc.error.offset': '5', 'ipc.error.partition': '2'})
  })

  it('stops at the limit and resolves only what it took', () => {
    const step = readBatch(input([valid(10, '10.0.0.1'), valid(11, '10.0.0.2'), valid(12, '10.0.0.3')], {limit: 2}))
    expect(step.processed).to.equal(2)
    expect(step.lastOffset).to.equal('11')
  })

  it('takes nothing once the consumer stops', () => {
    const step = readBatch(input([valid(10, '10.0.0.1')], {isRunning: () => false}))
    expect(step.processed).to.equal(0)
    expect(step.lastOffset).to.equal(undefined)
  })

  it('stops at a batch it cannot read, keeping what came before it', async () => {
    const messages = [valid(198, '10.0.0.1'), valid(199, '10.0.0.2'), ...(await unreadableMessages(200, 50))]
    const step = readBatch(input(messages))
    expect(step.events).to.have.length(2)
    expect(step.lastOffset).to.equal('199')
    expect(step.unreadable).to.be.instanceOf(UnreadableBatchError)
    expect(step.unreadable!.message).to.match(
      /^cannot read events\[2\] at offset 200: the zstd batch does not decompress \(.+\); nothing from this offset on is committed$/,
    )
  })
})
