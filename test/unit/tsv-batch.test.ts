import {expect} from 'chai'
import fc from 'fast-check'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {escapeTsv, LocalSequence, toTsvRow, TsvBatch} from '../../src/backends/clickhouse/tsv-batch.js'

const event = fc.record({
  timestampMs: fc.integer({min: -62_167_219_200_000, max: 253_402_300_799_999}),
  deviceIp: fc.oneof(fc.ipV4(), fc.constantFrom('::1', '2001:db8::8a2e:370:7334'), fc.string({unit: 'binary'})),
  errorCode: fc.integer({min: -128, max: 127}),
  source: fc.option(
    fc.record({
      topic: fc.constantFrom('events', 'with\ttab', 'ünïcode'),
      partition: fc.nat(1000),
      offset: fc.bigInt({min: 0n, max: 2n ** 63n - 1n}).map(String),
    }),
    {
      nil: undefined,
    },
  ),
})

describe('TsvBatch', () => {
  it('writes each event as the TabSeparated row the insert expects, escaping and encoding any text', () => {
    fc.assert(
      fc.property(event, (each) => {
        const row = toTsvRow(each, 'epoch-ms', {keyed: true, local: new LocalSequence()})
        const fields = row.slice(0, -1).split('\t')
        expect(row.endsWith('\n')).to.equal(true)
        expect(fields.slice(0, 3)).to.deep.equal([String(each.timestampMs), escapeTsv(each.deviceIp), String(each.errorCode)])
        if (each.source) {
          expect(fields.slice(3)).to.deep.equal([each.source.topic.replace('\t', '\\t'), String(each.source.partition), each.source.offset])
        } else {
          expect(fields[3]).to.equal('')
          expect(Number(fields[4])).to.be.below(0)
        }
      }),
    )
  })

  it('holds every row of a batch that outgrows its first buffer, in order', () => {
    const events: DeviceEvent[] = fc.sample(event, 5000)
    const batch = new TsvBatch(() => ({layout: 'epoch-ms', key: {keyed: false}}))
    for (const each of events) batch.append(each)
    expect(batch.size).to.equal(events.length)
    expect(batch.bytes.toString('utf8')).to.equal(events.map((each) => toTsvRow(each, 'epoch-ms')).join(''))
    expect(batch.bytes.length).to.be.above(64 * 1024)
  })
})
