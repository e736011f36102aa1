import {spawn} from 'node:child_process'
import {openSync, readSync, writeSync, closeSync} from 'node:fs'
import {expect} from 'chai'
import {type CliResult, runIpc} from '../support/cli.js'
import {dumpLogSegmentCodecs, javaProduce, segmentFiles} from '../support/java-producer.js'
import {committedTotal, createTopic, kafkaAdminClient} from '../support/kafka.js'
import {redisCount, serviceUrls, uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs, consumeArgs, type ConsumeJson, describeRun, parseJson, produce} from '../support/runs.js'

/**
 * Topics as real producers write them: Apache Kafka's Java producer and kcat (librdkafka), each
 * with every codec Kafka defines, transactions with aborted ones, and batches that cannot be read.
 */

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const

/** Events of one codec's run: its own devices (10.<codec+1>.x.y) and its index as the error code. */
function codecEvents(codecIndex: number, events: number, devices: number): {lines: string[]; distinct: number} {
  const lines: string[] = []
  const seen = new Set<string>()
  for (let i = 0; i < events; i++) {
    const device = (i * 7919) % devices
    const ip = `10.${codecIndex + 1}.${device >> 8}.${device & 0xff}`
    seen.add(ip)
    const timestamp = i % 2 === 0 ? 1_726_668_850_124 + i : new Date(1_726_668_850_124 + i * 1000).toISOString()
    lines.push(`${ip}\t${JSON.stringify({timestamp, device_ip: ip, error_code: codecIndex})}`)
  }
  return {lines, distinct: seen.size}
}

/** kcat -P with `-z codec`: librdkafka's framing of each codec. */
function kcatProduce(topic: string, codec: string, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const kcat = spawn('kcat', ['-b', serviceUrls().kafkaBrokers.join(','), '-t', topic, '-P', '-K', '\t', '-z', codec], {stdio: ['pipe', 'ignore', 'pipe']})
    let stderr = ''
    kcat.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    kcat.on('error', reject)
    kcat.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat -z ${codec} exited ${code}: ${stderr}`))))
    kcat.stdin.end(`${lines.join('\n')}\n`)
  })
}

async function clickhouseCount(database: string, errorCode?: number): Promise<number> {
  const args = ['count', '--backend', 'clickhouse', '--clickhouse-database', database, ...(errorCode === undefined ? [] : ['--error-code', String(errorCode)])]
  const counted = await runIpc(args)
  expect(counted.code, describeRun(counted)).to.equal(0)
  return Number(counted.stdout.trim())
}

interface ConsumeSummaryJson extends ConsumeJson {
  lag?: number
}

/** The codecs of every batch stored for a topic's partitions. */
async function storedCodecs(topic: string, partitions: number): Promise<Set<string>> {
  const codecs = new Set<string>()
  for (let partition = 0; partition < partitions; partition++) for (const codec of await dumpLogSegmentCodecs(topic, partition)) codecs.add(codec)
  return codecs
}

function expectNoKafkaErrorLines(result: CliResult): void {
  expect(result.stderr, 'routine start-up states are not printed as errors').to.not.match(/kafka error/)
}

describe('compressed and transactional topics from Kafka’s Java producer and kcat', function () {
  this.timeout(240_000)
  const PARTITIONS = 4
  const runs = CODECS.map((_, index) => codecEvents(index, 3000, 400 + 100 * index))
  const totalDistinct = runs.reduce((sum, run) => sum + run.distinct, 0)

  for (const producer of ['java', 'kcat'] as const) {
    describe(`written by ${producer === 'java' ? "Kafka's Java producer" : 'kcat -z'} with each codec`, () => {
      const topic = uniqueName(`codecs-${producer}`)

      before(async () => {
        await createTopic(topic, PARTITIONS)
        for (const [index, codec] of CODECS.entries()) {
          if (producer === 'kcat') await kcatProduce(topic, codec, runs[index].lines)
          else {
            // Keys, headers, an idempotent producer for some, and a tombstone and an empty value in the zstd run.
            const lines = codec === 'zstd' ? [...runs[index].lines, '10.5.0.1\t\\N', '10.5.0.2\t'] : runs[index].lines
            const sent = await javaProduce({brokers: serviceUrls().kafkaBrokers, topic, compression: codec, headers: true, idempotent: index % 2 === 0, lines})
            expect(sent.sent).to.equal(lines.length)
          }
        }
        expect(await storedCodecs(topic, PARTITIONS)).to.deep.equal(new Set(CODECS))
      })

      it('clickhouse counts each codec’s devices exactly', async () => {
        const database = uniqueName('ipc')
        const result = await runIpc(clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '2s'}))
        expectNoKafkaErrorLines(result)
        const consumed = parseJson<ConsumeSummaryJson>(result)
        const invalid = producer === 'java' ? 2 : 0
        expect(consumed.stats.valid).to.equal(CODECS.length * 3000)
        expect(consumed.stats.invalid).to.equal(invalid)
        if (invalid) expect(consumed.stats.invalidByReason.empty_message).to.equal(2)
        expect(consumed.lag).to.equal(0)
        expect(await clickhouseCount(database)).to.equal(totalDistinct)
        for (const [index] of CODECS.entries()) expect(await clickhouseCount(database, index), CODECS[index]).to.equal(runs[index].distinct)
      })

      it('redis counts within the HyperLogLog’s error', async () => {
        const key = uniqueName('ipc:devices')
        const consumed = parseJson<ConsumeSummaryJson>(
          await runIpc(consumeArgs(topic, uniqueName('g'), {'--backend': 'redis', '--redis-key': key, '--until-idle': '2s'})),
        )
        expect(consumed.stats.valid).to.equal(CODECS.length * 3000)
        const estimate = await redisCount(key)
        expect(Math.abs(estimate - totalDistinct) / totalDistinct).to.be.below(0.03)
      })

      if (producer === 'java') {
        it('two workers share the compressed partitions and count exactly', async () => {
          const database = uniqueName('ipc')
          const consumed = parseJson<ConsumeSummaryJson>(
            await runIpc(clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '2s', '--workers': '2'})),
          )
          expect(consumed.stats.valid).to.equal(CODECS.length * 3000)
          expect(await clickhouseCount(database)).to.equal(totalDistinct)
        })
      }
    })
  }

  it('leaves out aborted transactions and ends with no lag past the transaction markers', async () => {
    const topic = uniqueName('transactions')
    await createTopic(topic, PARTITIONS)
    const committedDevices = new Set<string>()
    const lines: string[] = []
    let committedEvents = 0
    for (let transaction = 0; transaction < 8; transaction++) {
      const aborted = transaction % 3 === 1
      lines.push('#begin')
      for (let i = 0; i < 250; i++) {
        // Aborted transactions hold devices of their own, which a count that took them would show.
        const ip = aborted ? `10.250.${transaction}.${i}` : `10.200.${transaction % 2}.${i}`
        if (!aborted) {
          committedDevices.add(ip)
          committedEvents++
        }
        lines.push(`${ip}\t${JSON.stringify({timestamp: 1_726_668_850_124 + i, device_ip: ip, error_code: 1})}`)
      }
      lines.push(aborted ? '#abort' : '#commit')
    }
    const sent = await javaProduce({brokers: serviceUrls().kafkaBrokers, topic, compression: 'lz4', transactionalId: `${topic}-tx`, lines})
    expect(sent.aborted).to.equal(3 * 250)
    expect(sent.committed).to.equal(committedEvents)
    const database = uniqueName('ipc')
    const group = uniqueName('g')
    const consumed = parseJson<ConsumeSummaryJson>(await runIpc(clickhouseConsumeArgs(topic, database, group, {'--until-idle': '3s'})))
    expect(consumed.stats.processed).to.equal(committedEvents)
    expect(consumed.lag, 'lag at stop').to.equal(0)
    expect(await clickhouseCount(database)).to.equal(committedDevices.size)
    // Committed up to the end of each partition, markers included.
    const admin = kafkaAdminClient().admin()
    await admin.connect()
    try {
      const ends = await admin.fetchTopicOffsets(topic)
      expect(await committedTotal(group, topic)).to.equal(ends.reduce((sum, end) => sum + Number(end.high), 0))
    } finally {
      await admin.disconnect()
    }
  })

  it('ipc produce --compression writes batches of that codec, which kcat reads back', async () => {
    for (const codec of ['snappy', 'lz4', 'zstd'] as const) {
      const topic = uniqueName(`produced-${codec}`)
      await createTopic(topic, 2)
      const produced = await produce(topic, {'--num-devices': '200', '--num-messages': '2000', '--seed': '3', '--compression': codec})
      expect(produced.messagesSent).to.equal(2000)
      expect(await storedCodecs(topic, 2)).to.deep.equal(new Set([codec]))
      const read = await new Promise<string>((resolve, reject) => {
        const kcat = spawn('kcat', ['-b', serviceUrls().kafkaBrokers.join(','), '-C', '-t', topic, '-e', '-q'], {stdio: ['ignore', 'pipe', 'pipe']})
        let stdout = ''
        kcat.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
        kcat.on('error', reject)
        kcat.on('close', () => resolve(stdout))
      })
      expect(read.trim().split('\n'), codec).to.have.length(2000)
    }
  })

  it('the dead-letter producer compresses with --dlq-compression', async () => {
    const topic = uniqueName('dlq-source')
    const dlqTopic = uniqueName('dlq')
    await createTopic(topic, 1)
    await createTopic(dlqTopic, 1)
    await kcatProduce(topic, 'none', [
      'a\tnot json',
      'b\t{"device_ip": "10.0.0.1"}',
      `c\t${JSON.stringify({timestamp: 1, device_ip: '10.0.0.2', error_code: 0})}`,
    ])
    const consumed = parseJson<ConsumeSummaryJson>(
      await runIpc(consumeArgs(topic, uniqueName('g'), {'--backend': 'memory', '--until-idle': '2s', '--dlq-topic': dlqTopic, '--dlq-compression': 'zstd'})),
    )
    expect(consumed.stats.deadLettered).to.equal(2)
    expect(await storedCodecs(dlqTopic, 1)).to.deep.equal(new Set(['zstd']))
  })

  describe('a batch that cannot be read', () => {
    /** A one-partition topic of two Java producer runs (zstd): offsets 0–99 and 100–199, each its own devices. */
    async function twoRuns(): Promise<{topic: string; segment: string; secondBatch: number}> {
      const topic = uniqueName('unreadable')
      await createTopic(topic, 1)
      for (const run of [0, 1]) {
        const lines = Array.from({length: 100}, (_, i) => {
          const ip = `10.6${run}.0.${i % 50}`
          return `${ip}\t${JSON.stringify({timestamp: 1_726_668_850_124, device_ip: ip, error_code: 0})}`
        })
        await javaProduce({brokers: serviceUrls().kafkaBrokers, topic, compression: 'zstd', lines})
      }
      const [segment] = segmentFiles(topic, 0)
      return {topic, segment, secondBatch: batchPosition(segment, 100n)}
    }

    /** The file position of the record batch whose base offset is `offset`. */
    function batchPosition(segment: string, offset: bigint): number {
      const fd = openSync(segment, 'r')
      try {
        const header = Buffer.alloc(12)
        for (let position = 0; readSync(fd, header, 0, 12, position) === 12; position += 12 + header.readInt32BE(8)) {
          if (header.readBigInt64BE(0) === offset) return position
        }
      } finally {
        closeSync(fd)
      }
      throw new Error(`no batch starts at offset ${offset} in ${segment}`)
    }

    /** Changes bytes of the segment in place; the broker serves fetches from the file, so the next fetch carries them. */
    function rewrite(segment: string, position: number, change: (bytes: Buffer) => void, length: number): void {
      const fd = openSync(segment, 'r+')
      try {
        const bytes = Buffer.alloc(length)
        readSync(fd, bytes, 0, length, position)
        change(bytes)
        writeSync(fd, bytes, 0, length, position)
      } finally {
        closeSync(fd)
      }
    }

    async function expectStopAtSecondBatch(topic: string, reason: RegExp): Promise<void> {
      const database = uniqueName('ipc')
      const group = uniqueName('g')
      const result = await runIpc(clickhouseConsumeArgs(topic, database, group, {'--until-idle': '5s'}), {timeoutMs: 60_000})
      expect(result.code, describeRun(result)).to.equal(4)
      expect(result.stdout).to.equal('')
      const lines = result.stderr.trim().split('\n')
      expect(lines, result.stderr).to.have.length(1)
      expect(lines[0]).to.contain(`cannot read ${topic}[0] at offset 100:`)
      expect(lines[0]).to.match(reason)
      expect(lines[0]).to.not.match(/\n\s+at /)
      // Everything before the batch was stored and committed, nothing from it on.
      expect(await committedTotal(group, topic)).to.equal(100)
      expect(await clickhouseCount(database)).to.equal(50)
    }

    it('a corrupt zstd batch stops the consumer with one line and exit code 4, committing up to it', async () => {
      const {topic, segment, secondBatch} = await twoRuns()
      const recordsStart = secondBatch + 61
      rewrite(segment, recordsStart + 8, (bytes) => bytes.fill(0x5a), 24)
      await expectStopAtSecondBatch(topic, /the zstd batch does not decompress/)
    })

    it('a batch naming a codec Kafka does not define stops the consumer the same way', async () => {
      const {topic, segment, secondBatch} = await twoRuns()
      // The attributes' low byte: its three low bits are the codec.
      rewrite(segment, secondBatch + 22, (bytes) => (bytes[0] = (bytes[0] & ~0x07) | 6), 1)
      await expectStopAtSecondBatch(topic, /compression codec 6, which Kafka does not define/)
    })
  })
})
