/**
 * The Kafka client's own ceiling for bench/consume.ts: a bare kafkajs consumer (eachBatch, JSON.parse
 * of every message, nothing stored, no commits), run as its own process. Reads the topic from the
 * beginning in a fresh group until it has seen `events` messages; prints one line of JSON with the
 * rate from the first to the last message and the group join time. With `ipc-decoder`, kafkajs
 * decodes record batches with ipc's decoder (src/kafka/record-batch-decoder.ts) instead of its own.
 *
 *   node dist/bench/bare-consumer.js <brokers> <topic> <events> [ipc-decoder]
 */
import {Kafka, logLevel} from 'kafkajs'
import {installRecordBatchDecoder} from '../src/kafka/record-batch-decoder.js'

const [brokers, topic, events, decoder] = process.argv.slice(2)
if (decoder === 'ipc-decoder' && !installRecordBatchDecoder()) throw new Error("ipc's record batch decoder could not be installed")
const expected = Number(events)
const kafka = new Kafka({clientId: 'ipc-bench-bare', brokers: brokers.split(','), logLevel: logLevel.ERROR})
const consumer = kafka.consumer({
  groupId: `ipc-bench-bare-${process.pid}-${Date.now()}`,
  maxWaitTimeInMs: 500,
})
const started = performance.now()
await consumer.connect()
await consumer.subscribe({topic, fromBeginning: true})
let seen = 0
let parsedFields = 0
let firstAt: number | undefined
let lastAt = 0
await new Promise<void>((resolve, reject) => {
  consumer
    .run({
      autoCommit: false,
      eachBatch: async ({batch}) => {
        firstAt ??= performance.now()
        for (const message of batch.messages) {
          const value = JSON.parse(message.value?.toString('utf8') ?? 'null') as {error_code?: unknown} | null
          if (value?.error_code !== undefined) parsedFields++
          seen++
        }
        lastAt = performance.now()
        if (seen >= expected) resolve()
      },
    })
    .catch(reject)
})
await consumer.disconnect()
const activeMs = lastAt - (firstAt ?? lastAt)
console.log(
  JSON.stringify({messages: seen, parsedFields, joinMs: (firstAt ?? lastAt) - started, steadyEventsPerSecond: activeMs > 0 ? (seen * 1000) / activeMs : 0}),
)
