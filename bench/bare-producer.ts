/**
 * The reference for `ipc produce`: a bare kafkajs producer loop, run as its own process by
 * bench/produce.ts. The messages are generated before the clock starts (same generator, seed and
 * devices as `ipc produce`); then one awaited `send` per batch with acks from all in-sync replicas
 * and kafkajs's default partitioner (`ipc produce` picks the same partitions with its own, cheaper
 * murmur2). Prints one line of JSON.
 *
 *   node dist/bench/bare-producer.js <brokers> <topic> <events> <batch> <devices> <seed>
 */
import {Kafka, logLevel, Partitioners} from 'kafkajs'
import {EventGenerator} from '../src/loadgen/generator.js'

const [brokers, topic, events, batch, devices, seed] = process.argv.slice(2)
const total = Number(events)
const batchSize = Number(batch)
const generator = new EventGenerator({numDevices: Number(devices), seed: Number(seed)})
const messages = Array.from({length: total}, () => generator.next())

const producer = new Kafka({clientId: 'ipc-bench-bare', brokers: brokers.split(','), logLevel: logLevel.ERROR}).producer({
  createPartitioner: Partitioners.DefaultPartitioner,
})
await producer.connect()
const started = performance.now()
for (let sent = 0; sent < total; sent += batchSize) {
  await producer.send({topic, messages: messages.slice(sent, sent + batchSize), acks: -1})
}
const elapsedMs = performance.now() - started
await producer.disconnect()
console.log(JSON.stringify({messagesSent: total, elapsedMs, messagesPerSecond: (total * 1000) / elapsedMs}))
