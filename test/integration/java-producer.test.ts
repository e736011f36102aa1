import {expect} from 'chai'
import {waitFor} from '../support/cli.js'
import {dumpLogSegmentCodecs, javaProduce} from '../support/java-producer.js'
import {createTopic, kafkaAdminClient} from '../support/kafka.js'
import {serviceUrls} from '../support/services.js'

/** The fixture itself against the test broker: what Kafka's Java producer wrote is what the broker stored. */

/** The end offset of a one-partition topic (kafkajs asks read_committed: equal to the high watermark once no transaction is open). */
async function endOffset(topic: string): Promise<number> {
  const admin = kafkaAdminClient().admin()
  await admin.connect()
  try {
    const [partition] = await admin.fetchTopicOffsets(topic)
    return Number(partition.high)
  } finally {
    await admin.disconnect()
  }
}

describe('Java producer fixture', () => {
  it('writes zstd batches with keys and headers', async () => {
    const topic = `java-fixture-zstd-${Date.now()}`
    await createTopic(topic, 1)
    const lines = Array.from({length: 2000}, (_, i) => `device-${i % 50}\t10.0.${i % 256}.${i % 7}`)
    const result = await javaProduce({brokers: serviceUrls().kafkaBrokers, topic, compression: 'zstd', headers: true, lines})
    expect(result).to.deep.equal({sent: 2000, committed: 2000, aborted: 0, compression: 'zstd'})
    const codecs = await dumpLogSegmentCodecs(topic, 0)
    expect(codecs).to.not.be.empty
    expect(new Set(codecs)).to.deep.equal(new Set(['zstd']))
    expect(await endOffset(topic)).to.equal(2000)
  })

  it('commits and aborts transactions, whose markers take offsets', async () => {
    const topic = `java-fixture-txn-${Date.now()}`
    await createTopic(topic, 1)
    const lines = ['#begin', 'a\t1', 'b\t2', 'c\t3', '#commit', '#begin', 'd\t4', 'e\t\\N', '#abort']
    const result = await javaProduce({brokers: serviceUrls().kafkaBrokers, topic, transactionalId: `${topic}-producer`, lines})
    expect(result).to.deep.equal({sent: 5, committed: 3, aborted: 2, compression: 'none'})
    // The coordinator writes the last marker after commitTransaction/abortTransaction return.
    await waitFor('the abort marker', async () => ((await endOffset(topic)) === 5 + 2 ? true : undefined))
    const codecs = await dumpLogSegmentCodecs(topic, 0)
    expect(codecs).to.have.length.of.at.least(4, 'a batch per transaction and a marker per transaction')
    expect(new Set(codecs)).to.deep.equal(new Set(['none']))
  })
})
