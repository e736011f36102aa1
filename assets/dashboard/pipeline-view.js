// What the dashboard says about the pipeline's health, from the answer of GET /pipeline: pure
// functions (no DOM), so the wording and the state decisions are tested without a browser.

const integer = new Intl.NumberFormat()

/** "just now", "12 s ago", "4 min ago", "3 h 5 min ago", "2 days ago"; a time ahead of the server's clock says so. */
export function formatAge(ms) {
  if (ms < 0) return ms > -1000 ? 'just now' : `${span(-ms)} ahead of the server's clock`
  if (ms < 1000) return 'just now'
  return `${span(ms)} ago`
}

function span(ms) {
  const seconds = Math.floor(ms / 1000)
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`
  return `${integer.format(Math.floor(hours / 24))} days`
}

function plural(count, one, many) {
  return `${integer.format(count)} ${count === 1 ? one : many}`
}

/**
 * The lag card: `state` (ok, stopped, idle, not-configured, unknown, down), the figure to show
 * (undefined: keep the last one shown) and a sentence.
 */
export function lagView(lag) {
  const where = `${lag.brokers}${lag.topic ? `, topic ${lag.topic}` : ''}`
  switch (lag.state) {
    case 'ok': {
      const partitions = plural(lag.partitions.length, 'partition', 'partitions')
      if (lag.members.length > 0) {
        return {
          state: 'ok',
          figure: integer.format(lag.totalLag),
          text: `group ${lag.group} · ${plural(lag.members.length, 'consumer', 'consumers')} · ${partitions}`,
        }
      }
      if (lag.totalLag > 0) {
        return {
          state: 'stopped',
          figure: integer.format(lag.totalLag),
          text: `No consumer is running in group ${lag.group}: the lag grows with every event produced until one runs (${partitions}).`,
        }
      }
      return {state: 'idle', figure: '0', text: `No consumer is running in group ${lag.group}; it has read everything (${partitions}).`}
    }
    case 'not-configured':
      return {state: 'not-configured', figure: '—', text: "Not configured: start ipc serve with --group (and --brokers) to show a consumer group's lag."}
    case 'group-unknown':
      return {state: 'unknown', figure: '—', text: `No consumer group ${lag.group} at ${where} yet: it appears once ipc consume has joined it.`}
    case 'topic-unknown':
      return {state: 'unknown', figure: '—', text: `Topic ${lag.topic} does not exist at ${lag.brokers}.`}
    case 'kafka-unreachable':
      return {state: 'down', figure: undefined, text: `Kafka unreachable at ${lag.brokers} — ${lag.error}`}
    case 'kafka-refused':
      return {state: 'down', figure: undefined, text: `Kafka refused the login at ${lag.brokers} — ${lag.error}`}
    default:
      return {state: 'down', figure: undefined, text: `The lag of group ${lag.group} cannot be read — ${lag.error ?? lag.state}`}
  }
}

/** The freshness card: `state` (ok, empty, down, unsupported), its label, the figure (undefined: keep the last one) and a sentence. */
export function freshnessView(freshness, formatTime) {
  const label = freshness.measure === 'last-write' ? 'Last write' : 'Newest event'
  switch (freshness.state) {
    case 'ok': {
      const what = freshness.measure === 'last-write' ? `when ${freshness.backend} last stored events` : `the newest event stored in ${freshness.backend}`
      return {state: 'ok', label, figure: formatAge(freshness.ageMs), text: `${formatTime(Date.parse(freshness.at))} UTC: ${what}`}
    }
    case 'no-data':
      return {state: 'empty', label, figure: '—', text: `No data yet: nothing stored in ${freshness.backend}.`}
    case 'backend-down':
      return {state: 'down', label, figure: undefined, text: `Backend down: ${freshness.backend} at ${freshness.location} — ${freshness.error}`}
    default:
      return {state: 'unsupported', label: 'Freshness', figure: '—', text: `The ${freshness.backend} backend does not tell how fresh its data is.`}
  }
}

/** Rows of the per-partition table, by topic and partition. */
export function partitionRows(lag) {
  if (lag.state !== 'ok') return []
  return [...lag.partitions]
    .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
    .map((partition) => ({
      topic: partition.topic,
      partition: partition.partition,
      committed: partition.committed === null ? '—' : integer.format(partition.committed),
      end: integer.format(partition.end),
      lag: partition.lag,
      lagText: integer.format(partition.lag),
      consumer: partition.clientId ?? '—',
      consumerDetail: partition.memberId ? `${partition.clientId} on ${partition.host}, member ${partition.memberId}` : 'no consumer holds this partition',
    }))
}
