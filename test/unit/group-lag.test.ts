import {expect} from 'chai'
import {type GroupLag, type GroupMember, exceedsMaxLag, lagJson, lagLines, lagRows, totalLag} from '../../src/kafka/group-lag.js'
import {committedOffsets, partitionLags} from '../../src/kafka/lag-monitor.js'

const ENDS = [
  {partition: 2, low: '0', high: '40'},
  {partition: 0, low: '5', high: '100'},
  {partition: 1, low: '10', high: '30'},
]

const MEMBER: GroupMember = {memberId: 'ipc-consume-1', clientId: 'ipc-consume', host: '10.1.2.3', assignment: [{topic: 't', partitions: [0, 1, 2]}]}

function groupLag(committed: Array<{partition: number; offset: string}>, members: GroupMember[] = []): GroupLag {
  const partitions = partitionLags('t', ENDS, committedOffsets(committed), true).map((partition) => ({...partition, member: members[0]}))
  return {group: 'g', state: members.length > 0 ? 'Stable' : 'Empty', partitions, members, totalLag: totalLag(partitions)}
}

describe('group lag', () => {
  describe('partitionLags', () => {
    it('is the log-end offset minus the committed offset, in partition order', () => {
      const lag = partitionLags(
        't',
        ENDS,
        new Map([
          [0, 60],
          [1, 30],
          [2, 39],
        ]),
        true,
      )
      expect(lag.map((partition) => [partition.partition, partition.committed, partition.end, partition.lag])).to.deep.equal([
        [0, 60, 100, 40],
        [1, 30, 30, 0],
        [2, 39, 40, 1],
      ])
    })

    it('counts a partition without a commit from its log start, or from its end when the group starts at the end', () => {
      expect(partitionLags('t', ENDS, new Map(), true).map((partition) => partition.lag)).to.deep.equal([95, 20, 40])
      expect(partitionLags('t', ENDS, new Map(), false).map((partition) => partition.lag)).to.deep.equal([0, 0, 0])
    })

    it('never counts below 0 (a commit past the end of a truncated log)', () => {
      expect(partitionLags('t', [{partition: 0, low: '0', high: '10'}], new Map([[0, 12]]), true)[0].lag).to.equal(0)
    })
  })

  it('committedOffsets leaves out the partitions the admin API answers -1 for', () => {
    expect([
      ...committedOffsets([
        {partition: 0, offset: '7'},
        {partition: 1, offset: '-1'},
      ]),
    ]).to.deep.equal([[0, 7]])
  })

  it('totalLag sums the partitions, those without a commit included', () => {
    expect(groupLag([{partition: 0, offset: '90'}]).totalLag).to.equal(10 + 20 + 40)
  })

  describe('--max-lag', () => {
    it('fails only a total above it', () => {
      expect(exceedsMaxLag(11, 10)).to.equal(true)
      expect(exceedsMaxLag(10, 10)).to.equal(false)
      expect(exceedsMaxLag(0, 0)).to.equal(false)
      expect(exceedsMaxLag(1, 0)).to.equal(true)
    })

    it('passes everything when not given', () => {
      expect(exceedsMaxLag(1e12, undefined)).to.equal(false)
    })
  })

  describe('rows and lines', () => {
    it('show "-" for a partition without a commit and for the member of an unassigned partition', () => {
      const lag = groupLag([
        {partition: 0, offset: '100'},
        {partition: 2, offset: '38'},
      ])
      expect(lagRows(lag)).to.deep.equal([
        ['t', '0', '100', '100', '0', '-', '-', '-'],
        ['t', '1', '-', '30', '20', '-', '-', '-'],
        ['t', '2', '38', '40', '2', '-', '-', '-'],
      ])
      expect(lagLines(lag)).to.deep.equal(['t 0 100 100 0 - - -', 't 1 - 30 20 - - -', 't 2 38 40 2 - - -', 'total 22'])
    })

    it('name the member a partition is assigned to', () => {
      const rows = lagRows(groupLag([{partition: 0, offset: '100'}], [MEMBER]))
      expect(rows[0].slice(5)).to.deep.equal(['ipc-consume-1', '10.1.2.3', 'ipc-consume'])
    })
  })

  describe('JSON', () => {
    it('has the partitions, null for a missing commit or member, and the total', () => {
      const json = lagJson(groupLag([{partition: 0, offset: '95'}]))
      expect(json.totalLag).to.equal(5 + 20 + 40)
      expect(json.partitions[0]).to.deep.equal({
        topic: 't',
        partition: 0,
        committed: 95,
        start: 5,
        end: 100,
        lag: 5,
        memberId: null,
        clientId: null,
        host: null,
      })
      expect(json.partitions[1].committed).to.equal(null)
      expect(json).to.not.have.property('exceeded')
    })

    it('says with --max-lag whether the total is above it', () => {
      const lag = groupLag([{partition: 0, offset: '95'}])
      expect(lagJson(lag, 64)).to.include({maxLag: 64, exceeded: true})
      expect(lagJson(lag, 65)).to.include({maxLag: 65, exceeded: false})
    })
  })
})
