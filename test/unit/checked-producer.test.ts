import {expect} from 'chai'
import type {Message, Producer, ProducerConfig, ProducerRecord, RecordMetadata} from 'kafkajs'
import {CheckedProducer, IncompleteSendError} from '../../src/kafka/checked-producer.js'

/**
 * A producer that partitions like kafkajs (through the configured partitioner) and, like kafkajs
 * 2.2.4 after a leadership move, answers without some partitions: those in `dropped` for the
 * first `dropFor` sends.
 */
function fakeKafka(partitions: number, dropped: number[], dropFor: number) {
  const delivered: Array<{partition: number; value: string}> = []
  let sends = 0
  const kafka = {
    producer(config: ProducerConfig = {}): Producer {
      const partitioner = config.createPartitioner!()
      const partitionMetadata = Array.from({length: partitions}, (_, partitionId) => ({partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1]}))
      return {
        async send(record: ProducerRecord): Promise<RecordMetadata[]> {
          sends++
          const byPartition = new Map<number, Message[]>()
          for (const message of record.messages) {
            const partition = partitioner({topic: record.topic, partitionMetadata, message})
            byPartition.set(partition, [...(byPartition.get(partition) ?? []), message])
          }
          const answers: RecordMetadata[] = []
          for (const [partition, messages] of byPartition) {
            if (sends <= dropFor && dropped.includes(partition)) continue
            for (const message of messages) delivered.push({partition, value: String(message.value)})
            answers.push({topicName: record.topic, partition, errorCode: 0})
          }
          return answers
        },
      } as unknown as Producer
    },
  }
  return {kafka, delivered, sends: () => sends}
}

const messages = (n: number): Message[] => Array.from({length: n}, (_, i) => ({key: `10.0.0.${i}`, value: `event-${i}`}))

describe('CheckedProducer', () => {
  it('sends again exactly the messages whose partition the answer left out, once', async () => {
    const fake = fakeKafka(4, [1, 3], 1)
    const producer = new CheckedProducer(fake.kafka)
    const sent = messages(200)
    await producer.send({topic: 't', messages: sent, acks: -1})
    expect(fake.sends()).to.equal(2)
    const values = fake.delivered.map((entry) => entry.value).sort()
    expect(values).to.deep.equal(sent.map((message) => String(message.value)).sort())
    expect(new Set(fake.delivered.map((entry) => entry.partition))).to.deep.equal(new Set([0, 1, 2, 3]))
  })

  it('one send when every partition is acknowledged', async () => {
    const fake = fakeKafka(4, [], 0)
    await new CheckedProducer(fake.kafka).send({topic: 't', messages: messages(50)})
    expect(fake.sends()).to.equal(1)
    expect(fake.delivered).to.have.length(50)
  })

  it('fails with IncompleteSendError naming what is missing when a partition is never acknowledged', async () => {
    const fake = fakeKafka(2, [0], 1_000)
    const error = await new CheckedProducer(fake.kafka).send({topic: 'events', messages: messages(40)}).then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(IncompleteSendError)
    expect((error as Error).message).to.match(/^\d+ of 40 messages to events were not acknowledged after 6 sends$/)
    expect(fake.sends()).to.equal(6)
  })
})
