/**
 * A small Prometheus registry: counters, gauges and fixed-bucket histograms, rendered in the
 * text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** A metric was declared or used wrongly (bad name, unknown label, negative increment). */
export class MetricError extends Error {
  override name = 'MetricError'
}

export type Labels = Readonly<Record<string, string>>

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

interface Metric {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge' | 'histogram'
  renderSamples(): string[]
}

function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(value)
}

function renderLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return ''
  return `{${names.map((name, i) => `${name}="${escapeLabelValue(values[i])}"`).join(',')}}`
}

abstract class LabelledMetric<Series> implements Metric {
  abstract readonly type: Metric['type']
  protected readonly series = new Map<string, {values: string[]; data: Series}>()

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new MetricError(`invalid metric name "${name}"`)
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new MetricError(`invalid label name "${label}" on ${name}`)
    }
  }

  protected seriesFor(labels: Labels): Series {
    const given = Object.keys(labels)
    const unknown = given.filter((label) => !this.labelNames.includes(label))
    if (unknown.length > 0 || given.length !== this.labelNames.length) {
      throw new MetricError(`${this.name} takes labels {${this.labelNames.join(', ')}}, got {${given.join(', ')}}`)
    }
    const values = this.labelNames.map((label) => labels[label])
    const key = JSON.stringify(values)
    let entry = this.series.get(key)
    if (!entry) {
      entry = {values, data: this.initialSeries()}
      this.series.set(key, entry)
    }
    return entry.data
  }

  protected abstract initialSeries(): Series
  abstract renderSamples(): string[]
}

/** A metric with one number per label set: what counters and gauges share. */
abstract class SingleValueMetric extends LabelledMetric<{value: number}> {
  get(labels: Labels = {}): number {
    return this.seriesFor(labels).value
  }

  protected initialSeries(): {value: number} {
    return {value: 0}
  }

  renderSamples(): string[] {
    if (this.labelNames.length === 0 && this.series.size === 0) this.seriesFor({})
    return [...this.series.values()].map(({values, data}) => `${this.name}${renderLabels(this.labelNames, values)} ${formatSampleValue(data.value)}`)
  }
}

export class Counter extends SingleValueMetric {
  readonly type = 'counter'

  inc(labels: Labels = {}, amount = 1): void {
    if (!(amount >= 0)) throw new MetricError(`${this.name}: a counter only goes up (got ${amount})`)
    this.seriesFor(labels).value += amount
  }
}

export class Gauge extends SingleValueMetric {
  readonly type = 'gauge'

  set(value: number, labels: Labels = {}): void {
    this.seriesFor(labels).value = value
  }
}

interface HistogramSeries {
  /** Per bucket (not cumulative) observation counts; the last slot is +Inf. */
  bucketCounts: number[]
  sum: number
  count: number
}

export class Histogram extends LabelledMetric<HistogramSeries> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames)
    if (labelNames.includes('le')) throw new MetricError(`${name}: "le" is reserved for histogram buckets`)
    if (buckets.length === 0) throw new MetricError(`${name}: a histogram needs at least one bucket`)
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i] > buckets[i - 1])) throw new MetricError(`${name}: buckets must be strictly increasing`)
    }
    this.buckets = [...buckets]
  }

  observe(value: number, labels: Labels = {}): void {
    const series = this.seriesFor(labels)
    let index = this.buckets.findIndex((upperBound) => value <= upperBound)
    if (index === -1) index = this.buckets.length
    series.bucketCounts[index]++
    series.sum += value
    series.count++
  }

  /** Cumulative count of observations `<= upperBound` (a declared bucket, or Infinity). */
  cumulativeCount(upperBound: number, labels: Labels = {}): number {
    const series = this.seriesFor(labels)
    let total = 0
    for (let i = 0; i < this.buckets.length && this.buckets[i] <= upperBound; i++) total += series.bucketCounts[i]
    if (upperBound === Number.POSITIVE_INFINITY) total += series.bucketCounts[this.buckets.length]
    return total
  }

  protected initialSeries(): HistogramSeries {
    return {bucketCounts: Array.from({length: this.buckets.length + 1}, () => 0), sum: 0, count: 0}
  }

  renderSamples(): string[] {
    if (this.labelNames.length === 0 && this.series.size === 0) this.seriesFor({})
    const lines: string[] = []
    const bucketLabelNames = [...this.labelNames, 'le']
    for (const {values, data} of this.series.values()) {
      let cumulative = 0
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += data.bucketCounts[i]
        const le = i < this.buckets.length ? formatSampleValue(this.buckets[i]) : '+Inf'
        lines.push(`${this.name}_bucket${renderLabels(bucketLabelNames, [...values, le])} ${cumulative}`)
      }
      const labels = renderLabels(this.labelNames, values)
      lines.push(`${this.name}_sum${labels} ${formatSampleValue(data.sum)}`, `${this.name}_count${labels} ${data.count}`)
    }
    return lines
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>()

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(new Counter(name, help, labelNames))
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(new Gauge(name, help, labelNames))
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, labelNames, buckets))
  }

  /** Every metric in registration order, in the Prometheus text format, ending with a newline. */
  render(): string {
    const lines: string[] = []
    for (const metric of this.metrics.values()) {
      lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.renderSamples())
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`
  }

  private register<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new MetricError(`metric "${metric.name}" is already registered`)
    this.metrics.set(metric.name, metric)
    return metric
  }
}
