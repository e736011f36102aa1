// The dashboard of `ipc serve`. It asks only the server's JSON API, so the server's cache,
// single-flight and backend timeout protect the backend from the page as from any client.
// Charts are plain SVG: one <rect> per bucket with its values as data attributes and a <title>,
// so a screen reader, a hover and a browser test all read the same numbers the chart draws.

import {freshnessView, lagView, partitionRows} from './pipeline-view.js'

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
const WINDOWS = {hour: {sizeMs: HOUR_MS, buckets: 24}, day: {sizeMs: DAY_MS, buckets: 30}}
/** Charts and the error-code table are asked again every this many count refreshes. */
const CHART_EVERY = 6
const SVG = 'http://www.w3.org/2000/svg'

const root = document.documentElement
const errorCodes = (root.dataset.errorCodes ?? '')
  .split(',')
  .filter((code) => code !== '')
  .map(Number)
const refreshMs = Number(root.dataset.refreshMs) > 0 ? Number(root.dataset.refreshMs) : 5000
const integer = new Intl.NumberFormat()
const compact = new Intl.NumberFormat(undefined, {notation: 'compact', maximumFractionDigits: 1})
const monthDay = new Intl.DateTimeFormat(undefined, {month: 'short', day: 'numeric', timeZone: 'UTC'})
const dateTime = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC'})
const clock = new Intl.DateTimeFormat(undefined, {timeStyle: 'medium', timeZone: 'UTC'})
const stamp = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC'})

/** Why a request gave no answer: the server is unreachable, the backend is down (503), or the query was refused. */
class AnswerError extends Error {
  constructor(kind, message, body = {}) {
    super(message)
    this.kind = kind
    this.body = body
  }
}

async function getJson(path) {
  let response
  try {
    response = await fetch(path, {cache: 'no-store', headers: {accept: 'application/json'}})
  } catch (error) {
    throw new AnswerError('unreachable', `ipc serve does not answer (${error.message})`)
  }
  let body = {}
  try {
    body = await response.json()
  } catch {
    // A body that is not JSON (a proxy's error page) leaves only the status to report.
  }
  if (response.ok) return body
  const message = typeof body.error === 'string' ? body.error : `HTTP ${response.status}`
  throw new AnswerError(response.status === 503 ? 'down' : 'refused', message, body)
}

/** The whole buckets that end with the current one: the last 24 hours, the last 30 days (UTC). */
function windowOf(by, nowMs) {
  const {sizeMs, buckets} = WINDOWS[by]
  const untilMs = Math.floor(nowMs / sizeMs) * sizeMs + sizeMs
  return {sinceMs: untilMs - buckets * sizeMs, untilMs}
}

function rangeQuery({sinceMs, untilMs}, extra = '') {
  const since = encodeURIComponent(new Date(sinceMs).toISOString())
  const until = encodeURIComponent(new Date(untilMs).toISOString())
  return `/unique_ip_count?since=${since}&until=${until}${extra}`
}

function bucketLabel(ms, by) {
  if (by === 'day') return monthDay.format(ms)
  return `${String(new Date(ms).getUTCHours()).padStart(2, '0')}:00`
}

function element(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  if (text !== undefined) node.textContent = text
  return node
}

/** A round top for the y axis: 1, 2 or 5 times a power of ten, at least 1. */
function axisTop(max) {
  if (max <= 1) return 1
  const power = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power
  return 10 * power
}

/** Drawn at the figure's own width in CSS pixels, so its text stays readable on a phone too. */
function renderChart(figure, by, window, series) {
  rendered.set(figure, {by, window, series})
  const width = Math.max(280, Math.round(figure.clientWidth || 640))
  const height = width < 500 ? 200 : 240
  const [left, right, top, bottom] = [44, 18, 10, 26]
  const plotWidth = width - left - right
  const plotHeight = height - top - bottom
  const max = series.reduce((most, point) => Math.max(most, point.count), 0)
  const yTop = axisTop(max)
  const slot = plotWidth / Math.max(series.length, 1)
  const svg = element('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img'})
  const title = by === 'hour' ? 'Unique devices per hour' : 'Unique devices per day'
  svg.setAttribute('aria-label', `${title}, peak ${integer.format(max)}`)
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotHeight - fraction * plotHeight
    svg.append(element('line', {class: 'grid', x1: left, x2: width - right, y1: y, y2: y}))
    svg.append(element('text', {x: left - 6, y: y + 4, 'text-anchor': 'end'}, compact.format(fraction * yTop)))
  }
  const labelEvery = Math.ceil(series.length / Math.max(2, Math.floor(plotWidth / 56)))
  series.forEach((point, index) => {
    const startMs = Date.parse(point.bucket)
    const barHeight = (point.count / yTop) * plotHeight
    const x = left + index * slot + slot * 0.1
    const bar = element('rect', {
      class: 'bar',
      x: x.toFixed(2),
      y: (top + plotHeight - barHeight).toFixed(2),
      width: (slot * 0.8).toFixed(2),
      height: barHeight.toFixed(2),
      'data-bucket': point.bucket,
      'data-count': point.count,
    })
    const when = by === 'hour' ? `${dateTime.format(startMs)} UTC` : `${monthDay.format(startMs)} (UTC)`
    bar.append(element('title', {}, `${when}: ${integer.format(point.count)} devices`))
    svg.append(bar)
    if ((series.length - 1 - index) % labelEvery === 0) {
      svg.append(element('text', {x: (x + slot * 0.4).toFixed(2), y: height - 8, 'text-anchor': 'middle'}, bucketLabel(startMs, by)))
    }
  })
  const caption = document.createElement('figcaption')
  const span = `${dateTime.format(window.sinceMs)} – ${dateTime.format(window.untilMs)} UTC`
  caption.textContent = max === 0 ? `No data yet: no events in ${span}.` : `${span} · peak ${integer.format(max)} devices`
  figure.replaceChildren(svg, caption)
  figure.dataset.since = new Date(window.sinceMs).toISOString()
  figure.dataset.until = new Date(window.untilMs).toISOString()
  figure.dataset.state = max === 0 ? 'empty' : 'ok'
}

/** What each chart last drew, to draw it again at a new width. */
const rendered = new Map()
let resizeTimer
addEventListener('resize', () => {
  clearTimeout(resizeTimer)
  resizeTimer = setTimeout(() => {
    for (const [figure, {by, window, series}] of rendered) if (figure.dataset.state !== 'refused') renderChart(figure, by, window, series)
  }, 150)
})

function showChartMessage(figure, text, state) {
  const message = document.createElement('p')
  message.className = 'message'
  message.textContent = text
  figure.replaceChildren(message)
  figure.dataset.state = state
  rendered.delete(figure)
}

async function refreshChart(by, nowMs) {
  const figure = document.getElementById(by === 'hour' ? 'hourly' : 'daily')
  const window = windowOf(by, nowMs)
  try {
    const answer = await getJson(rangeQuery(window, `&by=${by}`))
    renderChart(figure, by, window, answer.series ?? [])
  } catch (error) {
    if (error.kind === 'refused') showChartMessage(figure, `Not available: ${error.message}`, 'refused')
    else if (!figure.dataset.since) showChartMessage(figure, 'Waiting for the backend…', 'waiting')
    else figure.dataset.state = 'stale'
    if (error.kind !== 'refused') throw error
  }
}

async function refreshErrorCodes(nowMs) {
  const table = document.getElementById('codes')
  const note = document.getElementById('codes-note')
  const window = windowOf('hour', nowMs)
  const answers = await Promise.all(errorCodes.map((code) => getJson(rangeQuery(window, `&error_code=${code}`))))
  const max = answers.reduce((most, answer) => Math.max(most, answer.unique_device_ip_count), 0)
  const rows = answers.map((answer, index) => {
    const count = answer.unique_device_ip_count
    const row = document.createElement('tr')
    row.dataset.code = String(errorCodes[index])
    row.dataset.count = String(count)
    const code = document.createElement('td')
    code.textContent = String(errorCodes[index])
    const devices = document.createElement('td')
    devices.textContent = integer.format(count)
    const share = document.createElement('td')
    const bar = document.createElement('span')
    bar.className = 'share'
    bar.style.width = max === 0 ? '0' : `${((count / max) * 100).toFixed(1)}%`
    share.append(bar)
    row.append(code, devices, share)
    return row
  })
  table.tBodies[0].replaceChildren(...rows)
  const exact = answers[0]?.exact
  note.textContent =
    (max === 0 ? 'No data yet: no device reported these codes in the last 24 hours. ' : '') +
    `A device that reported several codes counts once under each${exact === false ? '; counts are HyperLogLog estimates' : ''}.`
}

function setState(kind, text) {
  const state = document.getElementById('state')
  document.body.dataset.state = kind
  state.className = `state ${kind}`
  state.textContent = text
  state.hidden = kind === 'ok'
}

function describeBackend(body) {
  if (!body.backend) return ''
  return body.location ? `${body.backend} at ${body.location}` : body.backend
}

let lastCountAt
let chartsCurrent = false
/** When each pipeline figure last got a value, for the note of a failed refresh. */
const figureShownAt = {lag: undefined, freshness: undefined}

/** One figure of the pipeline card: its state, its value (kept when the view has none: the last one stays) and its sentence. */
function showFigure(id, view) {
  const figure = document.getElementById(id)
  figure.dataset.state = view.state
  let note = view.text
  if (view.figure !== undefined) {
    document.getElementById(`${id}-${id === 'lag' ? 'total' : 'age'}`).textContent = view.figure
    figureShownAt[id] = view.figure === '—' ? undefined : Date.now()
  } else if (figureShownAt[id]) note = `${view.text}. Showing the value of ${clock.format(figureShownAt[id])} UTC.`
  document.getElementById(`${id}-note`).textContent = note
}

function showPartitions(lag) {
  const table = document.getElementById('lag-partitions')
  const rows = partitionRows(lag).map((partition) => {
    const row = document.createElement('tr')
    row.dataset.topic = partition.topic
    row.dataset.partition = String(partition.partition)
    row.dataset.lag = String(partition.lag)
    for (const text of [partition.topic, String(partition.partition), partition.committed, partition.end, partition.lagText, partition.consumer]) {
      const cell = document.createElement('td')
      cell.textContent = text
      row.append(cell)
    }
    row.firstChild.title = partition.topic
    row.lastChild.title = partition.consumerDetail
    return row
  })
  table.tBodies[0].replaceChildren(...rows)
  table.hidden = rows.length === 0
}

/** The lag and freshness of GET /pipeline; a failed part keeps its last figure and says since when. */
async function refreshPipeline() {
  let answer
  try {
    answer = await getJson('/pipeline')
  } catch (error) {
    for (const id of ['lag', 'freshness']) showFigure(id, {state: 'down', figure: undefined, text: error.message})
    return
  }
  const {lag, freshness} = answer
  const lagShown = lagView(lag)
  showFigure('lag', lagShown)
  const total = document.getElementById('lag-total')
  if (lag.state === 'ok') total.dataset.lag = String(lag.totalLag)
  else if (lagShown.figure !== undefined) total.dataset.lag = ''
  if (lagShown.figure !== undefined) showPartitions(lag)

  const freshnessShown = freshnessView(freshness, (ms) => stamp.format(ms))
  document.getElementById('freshness-label').textContent = freshnessShown.label
  showFigure('freshness', freshnessShown)
  const age = document.getElementById('freshness-age')
  if (freshness.state === 'ok') {
    age.dataset.at = freshness.at
    age.title = `${stamp.format(Date.parse(freshness.at))} UTC`
  } else if (freshnessShown.figure !== undefined) age.dataset.at = ''

  document.getElementById('pipeline-updated').textContent = `updated ${clock.format(Date.now())} UTC, every ${refreshMs / 1000} s`
}

async function refreshCount() {
  const total = document.getElementById('total')
  try {
    const answer = await getJson('/unique_ip_count')
    const count = answer.unique_device_ip_count
    total.textContent = integer.format(count)
    total.dataset.count = String(count)
    lastCountAt = Date.now()
    document.getElementById('updated').textContent = `updated ${clock.format(lastCountAt)} UTC, every ${refreshMs / 1000} s`
    if (count === 0) setState('empty', 'No data yet: the backend answers, but no event has been counted. Start ipc consume to fill it.')
    else setState('ok', '')
    return true
  } catch (error) {
    const since = lastCountAt ? ` Showing the values of ${clock.format(lastCountAt)} UTC.` : ''
    if (error.kind === 'down') {
      const where = describeBackend(error.body)
      setState('down', `Backend down${where ? `: ${where}` : ''} — ${error.message}.${since}`)
    } else setState('down', `${error.message}.${since}`)
    return false
  }
}

async function refreshBackendName() {
  try {
    const health = await getJson('/healthz')
    document.getElementById('backend').textContent = `${describeBackend(health)} · ${health.exact ? 'exact counts' : 'approximate counts (HyperLogLog)'}`
  } catch (error) {
    if (error.body?.backend) document.getElementById('backend').textContent = describeBackend(error.body)
  }
}

async function tick(round) {
  const countAnswered = await refreshCount()
  if (countAnswered && (round % CHART_EVERY === 0 || !chartsCurrent)) {
    const nowMs = Date.now()
    const results = await Promise.allSettled([refreshChart('hour', nowMs), refreshChart('day', nowMs), refreshErrorCodes(nowMs)])
    chartsCurrent = results.every((result) => result.status === 'fulfilled')
    if (!root.dataset.loaded) await refreshBackendName()
    root.dataset.loaded = 'true'
  } else if (!countAnswered) {
    chartsCurrent = false
    if (!root.dataset.loaded) await refreshBackendName()
  }
  setTimeout(() => void tick(round + 1), refreshMs)
}

/** On a loop of its own: a slow lag read (Kafka unreachable, up to --lag-timeout) does not hold the count back. */
async function pipelineTick() {
  await refreshPipeline()
  setTimeout(() => void pipelineTick(), refreshMs)
}

void tick(0)
void pipelineTick()
