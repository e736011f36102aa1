import {expect} from 'chai'
import fc from 'fast-check'
import {Partitioners, type PartitionerArgs} from 'kafkajs'
import {createRequire} from 'node:module'
import {defaultPartitioner, murmur2} from '../../src/kafka/partitioner.js'

// kafkajs's own murmur2 (64-bit Long arithmetic), the reference the 32-bit version must match.
const kafkajsMurmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number

function metadata(partitions: number, leaderless: number[] = []): PartitionerArgs['partitionMetadata'] {
  return Array.from({length: partitions}, (_, partitionId) => ({
    partitionId,
    leader: leaderless.includes(partitionId) ? -1 : 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }))
}

describe('murmur2 and the producer partitioner', () => {
  it('hashes like kafkajs (and the Java client) for any key, string or bytes, of every length', () => {
    for (const key of ['', 'a', 'ab', 'abc', 'abcd', '10.1.2.3', '2001:db8::1', 'ü€😀', 'x'.repeat(1000)]) {
      expect(murmur2(key), JSON.stringify(key)).to.equal(kafkajsMurmur2(key))
    }
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 64}), (bytes) => murmur2(Buffer.from(bytes)) === kafkajsMurmur2(Buffer.from(bytes))),
      {numRuns: 5000},
    )
    fc.assert(
      fc.property(fc.string({unit: 'binary', maxLength: 40}), (text) => murmur2(text) === kafkajsMurmur2(text)),
      {numRuns: 5000},
    )
  })

  it('picks the partition kafkajs picks for a keyed message, and honours an explicit partition', () => {
    const ours = defaultPartitioner()
    const theirs = Partitioners.DefaultPartitioner()
    for (const partitions of [1, 7, 16, 1000]) {
      for (let device = 0; device < 2000; device++) {
        const args = {topic: 't', partitionMetadata: metadata(partitions), message: {key: `10.${device >> 8}.${device & 255}.${device % 7}`, value: 'v'}}
        expect(ours(args)).to.equal(theirs(args))
      }
    }
    expect(ours({topic: 't', partitionMetadata: metadata(16), message: {key: 'k', value: 'v', partition: 11}})).to.equal(11)
  })

  it('spreads keyless messages round-robin over the partitions that have a leader', () => {
    const partitioner = defaultPartitioner()
    const chosen = Array.from({length: 30}, () => partitioner({topic: 't', partitionMetadata: metadata(4, [2]), message: {value: 'v'}}))
    expect(new Set(chosen)).to.deep.equal(new Set([0, 1, 3]))
    for (let i = 1; i < chosen.length; i++) expect(chosen[i], `step ${i}`).to.equal([0, 1, 3][([0, 1, 3].indexOf(chosen[i - 1]) + 1) % 3])
  })
})
