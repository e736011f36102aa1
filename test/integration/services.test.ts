import {createClient as createClickHouseClient} from '@clickhouse/client'
import {expect} from 'chai'
import {Kafka, logLevel, Partitioners} from 'kafkajs'
import {createClient as createRedisClient} from '@redis/client'
import {TopicExistsError} from '../../src/kafka/topics.js'
import {createTopic, partitionLeaders, servicesCommand, startKafka, stopKafka} from '../support/kafka.js'
import {serviceUrls, uniqueName} from '../support/services.js'

/** Each service the integration tests rely on answers, and the Kafka broker can be stopped and started. */

function kafkaClient(clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: serviceUrls().kafkaBrokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: {retries: 2, initialRetryTime: 100},
  })
}

describe('test services', () => {
  describe('Redis', () => {
    it('answers PING and counts distinct members with PFADD/PFCOUNT', async () => {
      const redis = createRedisClient({url: serviceUrls().redisUrl})
      await redis.connect()
      const key = uniqueName('services_test')
      try {
        expect(await redis.ping()).to.equal('PONG')
        expect(await redis.pfAdd(key, ['10.0.0.1', '10.0.0.2', '10.0.0.3'])).to.equal(1)
        expect(await redis.pfAdd(key, ['10.0.0.2', '10.0.0.3'])).to.equal(0)
        await redis.pfAdd(key, ['192.168.1.1', '2001:db8::1'])
        expect(await redis.pfCount(key)).to.equal(5)
      } finally {
        await redis.del(key)
        await redis.close()
      }
    })
  })

  describe('ClickHouse', () => {
    it('answers SELECT version() and stores and reads JSONEachRow rows', async () => {
      const clickhouse = createClickHouseClient({url: serviceUrls().clickhouseUrl})
      const database = uniqueName('services_test')
      try {
        const version = await clickhouse.query({query: 'SELECT version() AS version', format: 'JSONEachRow'})
        const [{version: text}] = await version.json<{version: string}>()
        expect(text).to.match(/^\d+\.\d+/)

        await clickhouse.command({query: `CREATE DATABASE ${database}`})
        await clickhouse.command({
          query: `CREATE TABLE ${database}.events (device_ip String, bytes UInt64) ENGINE = MergeTree ORDER BY device_ip`,
        })
        await clickhouse.insert({
          table: `${database}.events`,
          values: [
            {device_ip: '10.0.0.1', bytes: 100},
            {device_ip: '10.0.0.2', bytes: 250},
            {device_ip: '10.0.0.1', bytes: 50},
          ],
          format: 'JSONEachRow',
        })
        const result = await clickhouse.query({
          query: `SELECT count() AS rows, uniqExact(device_ip) AS devices, sum(bytes) AS bytes FROM ${database}.events`,
          format: 'JSONEachRow',
        })
        // UInt64 values arrive as strings in JSON output.
        expect(await result.json()).to.deep.equal([{rows: '3', devices: '2', bytes: '400'}])
      } finally {
        await clickhouse.command({query: `DROP DATABASE IF EXISTS ${database}`})
        await clickhouse.close()
      }
    })
  })

  describe('Apache Kafka', () => {
    it('delivers every produced message to a consumer group reading a 4-partition topic, and keeps its commits', async () => {
      const topic = uniqueName('services_test')
      const groupId = uniqueName('services_group')
      await createTopic(topic, 4)

      const kafka = kafkaClient('services-test')
      const sent = Array.from({length: 200}, (_, index) => `message-${index}`)
      const producer = kafka.producer({createPartitioner: Partitioners.DefaultPartitioner})
      await producer.connect()
      try {
        await producer.send({topic, messages: sent.map((value, index) => ({key: `key-${index}`, value}))})
      } finally {
        await producer.disconnect()
      }

      const received: string[] = []
      const partitions = new Set<number>()
      const consumer = kafka.consumer({groupId})
      await consumer.connect()
      try {
        await consumer.subscribe({topics: [topic], fromBeginning: true})
        const allReceived = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`received ${new Set(received).size} of ${sent.length} messages within 30 s`)), 30_000)
          consumer
            .run({
              eachBatchAutoResolve: true,
              eachBatch: async ({batch, resolveOffset, commitOffsetsIfNecessary}) => {
                for (const message of batch.messages) {
                  received.push(message.value?.toString() ?? '')
                  partitions.add(batch.partition)
                  resolveOffset(message.offset)
                }
                await commitOffsetsIfNecessary()
                // At least once: a group that rebalances while it starts may hand a batch out twice.
                if (new Set(received).size >= sent.length) {
                  clearTimeout(timer)
                  resolve()
                }
              },
            })
            .catch(reject)
        })
        await allReceived
      } finally {
        await consumer.disconnect()
      }

      expect([...new Set(received)].sort()).to.deep.equal([...sent].sort())
      expect([...partitions].sort()).to.deep.equal([0, 1, 2, 3])

      const admin = kafka.admin()
      await admin.connect()
      try {
        // The producer is not idempotent, so a retried send may append a message twice: the commits
        // must reach each partition's end, which holds at least the messages sent.
        const [committed] = await admin.fetchOffsets({groupId, topics: [topic]})
        const ends = await admin.fetchTopicOffsets(topic)
        const byPartition = (rows: Array<{partition: number; offset: string}>) => Object.fromEntries(rows.map((row) => [row.partition, Number(row.offset)]))
        expect(byPartition(committed.partitions)).to.deep.equal(byPartition(ends))
        const total = ends.reduce((sum, partition) => sum + Number(partition.offset), 0)
        expect(total).to.be.at.least(sent.length)
      } finally {
        await admin.disconnect()
      }
    })

    it('is Apache Kafka with one node, and refuses a topic that exists already', async () => {
      const admin = kafkaClient('services-test-admin').admin()
      await admin.connect()
      try {
        const cluster = await admin.describeCluster()
        expect(cluster.brokers).to.have.lengthOf(1)
        expect(cluster.controller).to.equal(cluster.brokers[0].nodeId)
      } finally {
        await admin.disconnect()
      }
      const topic = uniqueName('services_test')
      await createTopic(topic, 2)
      const duplicate = await createTopic(topic, 2).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(duplicate).to.be.instanceOf(TopicExistsError)
      expect(await partitionLeaders(topic)).to.deep.equal(
        new Map([
          [0, 1],
          [1, 1],
        ]),
      )
    })

    it('scripts/services topic creates a topic with the partitions asked for, and refuses it a second time', async () => {
      const topic = uniqueName('services_topic')
      expect(await servicesCommand('topic', topic, '3')).to.equal(`topic ${topic}: 3 partitions on ${serviceUrls().kafkaBrokers.join(',')}`)
      expect([...(await partitionLeaders(topic)).keys()].sort()).to.deep.equal([0, 1, 2])
      const again = await servicesCommand('topic', topic, '3').then(
        () => '',
        (error: Error) => error.message,
      )
      expect(again).to.match(new RegExp(`error: topic "${topic}" exists already$`))
    })

    it('refuses connections while stopped, and after a restart serves the messages stored before', async function () {
      this.timeout(120_000)
      const topic = uniqueName('services_test')
      await createTopic(topic, 1)
      const producer = kafkaClient('services-test-restart').producer({createPartitioner: Partitioners.DefaultPartitioner})
      await producer.connect()
      await producer.send({topic, acks: -1, messages: [{value: 'before the restart'}]})
      await producer.disconnect()

      await stopKafka('kafka')
      const admin = kafkaClient('services-test-down').admin({retry: {retries: 0}})
      try {
        const outcome = await admin.connect().then(
          () => 'connected',
          () => 'refused',
        )
        expect(outcome).to.equal('refused')
      } finally {
        await admin.disconnect()
        await startKafka('kafka')
      }
      const consumer = kafkaClient('services-test-after').consumer({groupId: uniqueName('services_group')})
      await consumer.connect()
      try {
        await consumer.subscribe({topics: [topic], fromBeginning: true})
        const first = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no message within 30 s after the restart')), 30_000)
          consumer
            .run({
              eachMessage: async ({message}) => {
                clearTimeout(timer)
                resolve(message.value?.toString() ?? '')
              },
            })
            .catch(reject)
        })
        expect(first).to.equal('before the restart')
      } finally {
        await consumer.disconnect()
      }
    })
  })
})
