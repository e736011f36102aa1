import {expect} from 'chai'
import {type CliResult, runIpc, type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {createTopic, groupAssignment} from '../support/kafka.js'
import {uniqueName} from '../support/services.js'
import {
  clickhouseConsumeArgs,
  clickhouseCount,
  ClickHouseProbe,
  type ConsumeJson,
  describeRun,
  linesMatching,
  parseJson,
  type ProduceJson,
  reportFigure,
  startProduce,
} from '../support/runs.js'

/**
 * Several `ipc consume` processes in one consumer group on the real broker: the group coordinator
 * spreads the partitions over them, also when a member joins and another leaves mid-stream, with no
 * rebalance errors, and together they count what one process counts.
 */

/** Client lines that speak of a failed or repeated group join. */
const REBALANCE_TROUBLE = /rebalanc|rejoin|re-join|not the correct coordinator|unknown member|illegal generation|restarting after error/i

const MEMBER_FLAGS = {'--until-idle': '5s', '--batch-size': '2000'}

function startMember(topic: string, database: string, group: string): RunningCli {
  return startIpc(clickhouseConsumeArgs(topic, database, group, MEMBER_FLAGS), {timeoutMs: 200_000})
}

/** One process alone in a group of its own, reading the whole topic. */
async function consumeAlone(topic: string, database: string): Promise<ConsumeJson> {
  return parseJson<ConsumeJson>(await runIpc(clickhouseConsumeArgs(topic, database, uniqueName('g'), {...MEMBER_FLAGS, '--until-idle': '3s'})))
}

/** Waits until the group is stable with `count` members, each holding partitions. */
async function waitForMembersHolding(group: string, topic: string, count: number): Promise<void> {
  await waitFor(
    `${count} members each holding partitions`,
    async () => {
      const {state, partitionsPerMember} = await groupAssignment(group, topic)
      return state === 'Stable' && partitionsPerMember.length === count && partitionsPerMember.every((n) => n > 0) ? true : undefined
    },
    60_000,
    200,
  )
}

async function waitForRowsAbove(probe: ClickHouseProbe, what: string, rows: number): Promise<void> {
  await waitFor(what, async () => ((await probe.rows()) > rows ? true : undefined), 60_000, 100)
}

function expectNoRebalanceTrouble(results: CliResult[]): void {
  for (const result of results) expect(linesMatching(result.stderr, REBALANCE_TROUBLE), describeRun(result)).to.deep.equal([])
}

describe('consumer groups with several ipc consume processes on Apache Kafka', function () {
  this.timeout(240_000)

  it("three members share a 6-partition topic; one joins and one leaves mid-stream; the count equals one process's", async () => {
    // Given a paced stream of 60,000 events from 3,000 devices on 6 partitions, and two members of one group;
    // when a third member joins once events are stored and the first leaves (SIGTERM) after the join;
    // then the members end by signal, idle, idle, each having processed events, with no rebalance
    // trouble logged; together they read at least what one process alone reads, which is every event;
    // and the group's database and the lone process's count the producer's devices.
    const topic = uniqueName('group')
    const group = uniqueName('g')
    const database = uniqueName('ipc_group')
    const soloDatabase = uniqueName('ipc_solo')
    await createTopic(topic, 6)
    const probe = new ClickHouseProbe(database)
    // Paced: about 20 s of events, so members join and leave while events flow.
    const producer = startProduce(topic, {'--num-devices': '3000', '--num-messages': '60000', '--seed': '61', '--batch': '500', '--pause-ms': '150'})
    const first = startMember(topic, database, group)
    const second = startMember(topic, database, group)
    let third: RunningCli | undefined
    try {
      await waitForMembersHolding(group, topic, 2)
      await waitForRowsAbove(probe, 'the first stored events', 0)
      third = startMember(topic, database, group)
      const joined = third
      await waitForMembersHolding(group, topic, 3)
      await waitForRowsAbove(probe, 'rows to grow after the join', (await probe.rows()) + 2000)
      first.child.kill('SIGTERM')
      const [producerResult, a, b, c] = await Promise.all([producer.done, first.done, second.done, joined.done])
      const produced = parseJson<ProduceJson>(producerResult)
      const members = [a, b, c].map((result) => parseJson<ConsumeJson>(result))
      expect(members.map((member) => member.reason)).to.deep.equal(['signal', 'idle', 'idle'])
      for (const [index, member] of members.entries()) expect(member.stats.processed, `member ${index + 1} took part`).to.be.greaterThan(0)
      expectNoRebalanceTrouble([a, b, c])
      const together = members.reduce((sum, member) => sum + member.stats.processed, 0)

      const solo = await consumeAlone(topic, soloDatabase)
      expect(solo.stats.processed, 'one process reads every event once').to.equal(produced.messagesSent)
      // At least once: events a member had read but not yet stored when its partitions moved are
      // read again by their new owner (kafkajs has no revocation callback to flush before moving).
      expect(together, 'the group read every event').to.be.at.least(solo.stats.processed)
      expect(await probe.rows()).to.be.at.least(produced.messagesSent)
      const counts = await Promise.all([database, soloDatabase].map((name) => clickhouseCount(name)))
      expect(
        counts.map((count) => count.stdout),
        'the group and one process count the same devices',
      ).to.deep.equal([`${produced.distinctDevices}\n`, `${produced.distinctDevices}\n`])
      reportFigure(
        `group of 3 (one joined, one left mid-stream): processed ` +
          `${members.map((member) => member.stats.processed).join(' + ')} = ${together} ` +
          `(${together - solo.stats.processed} read twice after a move); one process: ${solo.stats.processed}; ` +
          `both count ${produced.distinctDevices} devices`,
      )
    } finally {
      for (const member of [first, second, third]) member?.child.kill('SIGKILL')
      producer.child.kill('SIGKILL')
      await probe.close()
    }
  })
})
