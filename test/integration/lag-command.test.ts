import {expect} from 'chai'
import {type CliResult, runIpc, startIpc, waitFor} from '../support/cli.js'
import {createTopic, groupAssignment, kafkaAdminClient, readTopic} from '../support/kafka.js'
import {uniqueName} from '../support/services.js'
import {closedPort} from '../support/tcp-proxy.js'
import type {GroupLagJson} from '../../src/kafka/group-lag.js'
import {consumeArgs, type ConsumeJson, describeRun, parseJson, produce} from '../support/runs.js'

/** `ipc lag` against the real broker, for groups `ipc consume` has read part or all of a topic with. */

async function lagJsonOf(args: string[]): Promise<GroupLagJson> {
  return parseJson<GroupLagJson>(await runIpc(['lag', ...args, '--json']))
}

/** The broker's own answer: per partition [log-end offset, committed offset or -1]. */
async function brokerOffsets(group: string, topic: string): Promise<Array<[number, number]>> {
  const admin = kafkaAdminClient().admin()
  await admin.connect()
  try {
    const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({groupId: group, topics: [topic]})])
    const byPartition = new Map(committed.partitions.map((partition) => [partition.partition, Number(partition.offset)]))
    return ends.sort((a, b) => a.partition - b.partition).map((end) => [Number(end.high), byPartition.get(end.partition) ?? -1])
  } finally {
    await admin.disconnect()
  }
}

function expectOneLine(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code, describeRun(result)).to.equal(code)
  expect(result.stdout).to.equal('')
  const lines = result.stderr.trim().split('\n')
  expect(lines, result.stderr).to.have.length(1)
  expect(lines[0]).to.match(pattern)
}

describe('ipc lag', function () {
  this.timeout(180_000)
  const PARTITIONS = 3
  const EVENTS = 900
  const READ = 400
  const topic = uniqueName('lag')
  const group = uniqueName('g')

  before(async () => {
    await createTopic(topic, PARTITIONS)
    expect((await produce(topic, {'--num-messages': String(EVENTS), '--num-devices': '300', '--batch': '100', '--seed': '11'})).messagesSent).to.equal(EVENTS)
    const consumed = parseJson<ConsumeJson>(await runIpc(consumeArgs(topic, group, {'--backend': 'memory', '--max-messages': String(READ)})))
    expect(consumed.stats.processed).to.equal(READ)
  })

  it('reports exactly the events the group has not read, with the offsets the broker holds', async () => {
    const lag = await lagJsonOf(['--group', group, '--topic', topic])
    expect(lag.totalLag).to.equal(EVENTS - READ)
    expect(lag.group).to.equal(group)
    expect(lag.members, 'the consumer has left').to.deep.equal([])
    const broker = await brokerOffsets(group, topic)
    expect(lag.partitions.map((partition) => [partition.end, partition.committed ?? -1])).to.deep.equal(broker)
    for (const partition of lag.partitions) {
      expect(partition.topic).to.equal(topic)
      expect(partition.lag).to.equal(partition.end - (partition.committed ?? partition.start))
    }
    expect(lag.partitions.reduce((sum, partition) => sum + partition.lag, 0)).to.equal(lag.totalLag)
  })

  it('without --topic reports every topic the group has committed offsets for', async () => {
    const lag = await lagJsonOf(['--group', group])
    expect(new Set(lag.partitions.map((partition) => partition.topic))).to.deep.equal(new Set([topic]))
    expect(lag.totalLag).to.equal(EVENTS - READ)
  })

  it('prints one line per partition and the total when piped, and says the group has no members', async () => {
    const result = await runIpc(['lag', '--group', group, '--topic', topic])
    expect(result.code, describeRun(result)).to.equal(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines).to.have.length(PARTITIONS + 1)
    expect(lines.at(-1)).to.equal(`total ${EVENTS - READ}`)
    for (const [index, line] of lines.slice(0, -1).entries()) expect(line).to.match(new RegExp(`^${topic} ${index} (\\d+|-) \\d+ \\d+ - - -$`))
    expect(result.stderr.trim()).to.equal(`ipc lag: consumer group ${group} has no active members`)
  })

  it('--max-lag exits 1 when the total is above it, 0 at or below it', async () => {
    const below = await runIpc(['lag', '--group', group, '--topic', topic, '--max-lag', String(EVENTS - READ - 1), '--json'])
    expect(below.code, describeRun(below)).to.equal(1)
    expect(JSON.parse(below.stdout)).to.include({totalLag: EVENTS - READ, exceeded: true})
    expect(below.stderr).to.match(new RegExp(`ipc lag: total lag ${EVENTS - READ} of group ${group} is above --max-lag ${EVENTS - READ - 1}`))
    const at = await runIpc(['lag', '--group', group, '--topic', topic, '--max-lag', String(EVENTS - READ)])
    expect(at.code, describeRun(at)).to.equal(0)
    const above = await runIpc(['lag', '--group', group, '--topic', topic, '--max-lag', String(EVENTS)])
    expect(above.code, describeRun(above)).to.equal(0)
  })

  it('names the member each partition is assigned to while the group is consuming', async () => {
    const liveGroup = uniqueName('g')
    const consumer = startIpc(consumeArgs(topic, liveGroup, {'--backend': 'memory'}, {json: false}))
    try {
      await waitFor('the consumer in its group', async () => {
        const assignment = await groupAssignment(liveGroup, topic)
        return assignment.state === 'Stable' && assignment.partitionsPerMember[0] === PARTITIONS ? true : undefined
      })
      const lag = await lagJsonOf(['--group', liveGroup, '--topic', topic])
      expect(lag.state).to.equal('Stable')
      expect(lag.members).to.have.length(1)
      const [member] = lag.members
      expect(member.clientId).to.equal('ipc-consume')
      expect(member.host).to.not.equal('')
      expect(member.assignment).to.deep.equal([{topic, partitions: [0, 1, 2]}])
      for (const partition of lag.partitions) expect(partition).to.include({memberId: member.memberId, clientId: member.clientId, host: member.host})
    } finally {
      consumer.child.kill('SIGTERM')
      await consumer.done
    }
  })

  it('reads 0 lag on a transactional topic whose last records are transaction markers, after a full consume', async () => {
    const txTopic = uniqueName('lag_tx')
    const txGroup = uniqueName('g')
    await createTopic(txTopic, 2)
    const producer = kafkaAdminClient().producer({transactionalId: `${txTopic}-tx`, idempotent: true, maxInFlightRequests: 1})
    await producer.connect()
    let committedEvents = 0
    try {
      for (const abort of [false, true, false]) {
        const transaction = await producer.transaction()
        const messages = Array.from({length: 20}, (_, i) => ({
          key: String(i),
          value: JSON.stringify({timestamp: 1_726_668_850_124 + i, device_ip: `10.77.${abort ? 1 : 0}.${i}`, error_code: 0}),
        }))
        await transaction.send({topic: txTopic, messages})
        if (abort) await transaction.abort()
        else {
          await transaction.commit()
          committedEvents += messages.length
        }
      }
    } finally {
      await producer.disconnect()
    }
    const ends = await brokerOffsets(txGroup, txTopic)
    const lastData = new Map<number, number>()
    for (const message of await readTopic(txTopic)) lastData.set(message.partition, Math.max(lastData.get(message.partition) ?? -1, Number(message.offset)))
    for (const [partition, [end]] of ends.entries())
      expect(end, `partition ${partition} ends with a marker`).to.be.greaterThan((lastData.get(partition) ?? -1) + 1)

    const consumed = parseJson<ConsumeJson>(await runIpc(consumeArgs(txTopic, txGroup, {'--backend': 'memory', '--until-idle': '3s'})))
    expect(consumed.stats.processed).to.equal(committedEvents)
    const lag = await lagJsonOf(['--group', txGroup, '--topic', txTopic])
    expect(lag.totalLag).to.equal(0)
    expect(lag.partitions.map((partition) => [partition.end, partition.committed])).to.deep.equal(ends.map(([end]) => [end, end]))
  })

  describe('bad input: one line on stderr, nothing on stdout', () => {
    it('an unknown group exits 2', async () => {
      const unknown = uniqueName('nogroup')
      expectOneLine(await runIpc(['lag', '--group', unknown, '--topic', topic]), 2, new RegExp(`^ipc lag: consumer group "${unknown}" does not exist`))
    })

    it('an unknown topic exits 3', async () => {
      const missing = uniqueName('notopic')
      expectOneLine(await runIpc(['lag', '--group', group, '--topic', missing]), 3, new RegExp(`^ipc lag: topic "${missing}" does not exist$`))
    })

    it('an unreachable broker exits 3', async () => {
      const port = await closedPort()
      const result = await runIpc(['lag', '--group', group, '--brokers', `127.0.0.1:${port}`, '--json'])
      expectOneLine(result, 3, new RegExp(`^ipc lag: no Kafka broker answered at 127\\.0\\.0\\.1:${port}`))
    })
  })
})
