import {expect} from 'chai'

/** The dashboard's pure view functions, as the browser loads them from assets/dashboard/pipeline-view.js. */
interface View {
  state: string
  label?: string
  figure: string | undefined
  text: string
}
interface PipelineView {
  formatAge(ms: number): string
  lagView(lag: object): View
  freshnessView(freshness: object, formatTime: (ms: number) => string): View
  partitionRows(lag: object): Array<{partition: number; lag: number; committed: string; consumer: string; consumerDetail: string}>
}

const view = (await import(new URL('../../../assets/dashboard/pipeline-view.js', import.meta.url).href)) as PipelineView

const partition = (index: number, lag: number, member: boolean) => ({
  topic: 'events',
  partition: index,
  committed: index === 2 ? null : 100,
  start: 0,
  end: 100 + lag,
  lag,
  memberId: member ? 'm-1' : null,
  clientId: member ? 'ipc-consume' : null,
  host: member ? '10.0.0.5' : null,
})

function okLag(lags: number[], member: boolean) {
  return {
    state: 'ok',
    brokers: 'k1:9092',
    topic: null,
    group: 'ipc',
    groupState: member ? 'Stable' : 'Empty',
    totalLag: lags.reduce((sum, lag) => sum + lag, 0),
    partitions: lags.map((lag, index) => partition(index, lag, member)),
    members: member ? [{memberId: 'm-1', clientId: 'ipc-consume', host: '10.0.0.5', assignment: []}] : [],
  }
}

describe('dashboard: what the page says about the pipeline', () => {
  it('words an age in the unit a person reads', () => {
    expect(view.formatAge(400)).to.equal('just now')
    expect(view.formatAge(12_300)).to.equal('12 s ago')
    expect(view.formatAge(4 * 60_000 + 59_000)).to.equal('4 min ago')
    expect(view.formatAge(3 * 3_600_000)).to.equal('3 h ago')
    expect(view.formatAge(3 * 3_600_000 + 5 * 60_000)).to.equal('3 h 5 min ago')
    expect(view.formatAge(5 * 86_400_000)).to.equal('5 days ago')
    expect(view.formatAge(-500)).to.equal('just now')
    expect(view.formatAge(-120_000)).to.equal("2 min ahead of the server's clock")
  })

  it('shows the total lag of a running group with its consumers and partitions', () => {
    expect(view.lagView(okLag([3, 4], true))).to.deep.equal({state: 'ok', figure: '7', text: 'group ipc · 1 consumer · 2 partitions'})
  })

  it('warns when no consumer runs and events wait, and says when it has read everything', () => {
    const stopped = view.lagView(okLag([3, 4, 0], false))
    expect(stopped).to.include({state: 'stopped', figure: '7'})
    expect(stopped.text).to.match(/^No consumer is running in group ipc: the lag grows/)
    expect(view.lagView(okLag([0], false))).to.include({state: 'idle', figure: '0'})
  })

  it('says lag is not configured, the group or topic is unknown, or Kafka is down (keeping the last figure)', () => {
    expect(view.lagView({state: 'not-configured'})).to.include({state: 'not-configured', figure: '—'})
    expect(view.lagView({state: 'not-configured'}).text).to.contain('--group')
    const where = {brokers: 'k1:9092', group: 'ipc', topic: 'events', error: 'no broker answered', checkedAt: ''}
    expect(view.lagView({...where, state: 'group-unknown'})).to.deep.equal({
      state: 'unknown',
      figure: '—',
      text: 'No consumer group ipc at k1:9092, topic events yet: it appears once ipc consume has joined it.',
    })
    expect(view.lagView({...where, state: 'topic-unknown'})).to.include({state: 'unknown', text: 'Topic events does not exist at k1:9092.'})
    expect(view.lagView({...where, state: 'kafka-unreachable'})).to.deep.equal({
      state: 'down',
      figure: undefined,
      text: 'Kafka unreachable at k1:9092 — no broker answered',
    })
  })

  it('shows the freshness by what the backend measures, no data yet, or the backend down', () => {
    const formatTime = (ms: number) => new Date(ms).toISOString()
    const base = {backend: 'clickhouse', location: 'http://h:8123', checkedAt: ''}
    expect(view.freshnessView({...base, state: 'ok', measure: 'newest-event', at: '2026-12-07T08:00:00.000Z', ageMs: 65_000}, formatTime)).to.deep.equal({
      state: 'ok',
      label: 'Newest event',
      figure: '1 min ago',
      text: '2026-12-07T08:00:00.000Z UTC: the newest event stored in clickhouse',
    })
    const redis = {...base, backend: 'redis', state: 'ok', measure: 'last-write', at: '2026-12-07T08:00:00.000Z', ageMs: 2000}
    expect(view.freshnessView(redis, formatTime)).to.include({label: 'Last write', figure: '2 s ago'})
    expect(view.freshnessView({...base, state: 'no-data', measure: 'newest-event', at: null, ageMs: null}, formatTime)).to.include({
      state: 'empty',
      figure: '—',
      text: 'No data yet: nothing stored in clickhouse.',
    })
    expect(view.freshnessView({...base, state: 'backend-down', error: 'ECONNREFUSED'}, formatTime)).to.deep.include({
      state: 'down',
      figure: undefined,
      text: 'Backend down: clickhouse at http://h:8123 — ECONNREFUSED',
    })
  })

  it('lists the partitions in order with "—" for an offset not committed and a partition no consumer holds', () => {
    const rows = view.partitionRows(okLag([3, 0, 9], false))
    expect(rows.map((row) => [row.partition, row.lag, row.committed, row.consumer])).to.deep.equal([
      [0, 3, '100', '—'],
      [1, 0, '100', '—'],
      [2, 9, '—', '—'],
    ])
    expect(view.partitionRows(okLag([1], true))[0]).to.include({consumer: 'ipc-consume', consumerDetail: 'ipc-consume on 10.0.0.5, member m-1'})
    expect(view.partitionRows({state: 'kafka-unreachable'})).to.deep.equal([])
  })
})
