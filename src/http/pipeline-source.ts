import type {GroupLagReader} from '../kafka/group-lag-reader.js'
import type {CountSource} from './count-source.js'
import {freshnessPart, type LagOutcome, lagPart, type LagTarget, type PipelineJson} from './pipeline-status.js'
import {SingleFlightCache} from './single-flight-cache.js'

export interface PipelineSourceOptions {
  /** The count source, whose backend instance, cache and timeout answer the freshness as well. */
  counts: CountSource
  /** The group to follow and its reader; undefined: the lag is not configured. */
  lag?: {target: LagTarget; reader: GroupLagReader}
  /** How long a lag read is reused (the count's cache time). */
  cacheMs: number
  /** How long a failed lag read is reused. */
  errorCacheMs: number
  /** Removes secrets from a text shown or logged. */
  redact: (text: string) => string
  /** Operator messages: Kafka unavailable, available again. */
  log: (message: string) => void
  now: () => number
}

/**
 * The pipeline's health for `GET /pipeline`: the group's lag, read from Kafka at most once per cache
 * time however many pages ask (single flight), and the backend's freshness from the count source.
 */
export class PipelineSource {
  private readonly lags: SingleFlightCache<LagOutcome>

  constructor(private readonly options: PipelineSourceOptions) {
    const {cacheMs, errorCacheMs, now} = options
    this.lags = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: 1})
  }

  /** Lag and freshness, read at once; never rejects. */
  async status(): Promise<PipelineJson> {
    const {counts, lag, redact, now} = this.options
    const [lagOutcome, freshness] = await Promise.all([lag ? this.readLag(lag.reader) : undefined, counts.freshness()])
    const backend = {name: counts.backendName, location: counts.backendLocation}
    return {lag: lagPart(lag?.target, lagOutcome, redact), freshness: freshnessPart(freshness, backend, now())}
  }

  /** Disconnects from Kafka; a lag read in flight fails rather than holding the shutdown for up to its timeout. */
  async close(): Promise<void> {
    await this.options.lag?.reader.close()
  }

  private async readLag(reader: GroupLagReader): Promise<LagOutcome> {
    return (await this.lags.get('', () => this.query(reader))).value
  }

  private async query(reader: GroupLagReader): Promise<LagOutcome> {
    const {now, log, redact} = this.options
    const previous = this.lags.last('')
    let outcome: LagOutcome
    try {
      outcome = {ok: true, lag: await reader.read(), completedAt: now()}
    } catch (error) {
      outcome = {ok: false, error: error instanceof Error ? error : new Error(String(error)), completedAt: now()}
    }
    const target = this.options.lag?.target
    const where = `the lag of group ${target?.group} at ${target?.brokers}`
    if (outcome.ok && previous && !previous.ok) log(`${where} is available again`)
    else if (!outcome.ok && (!previous || previous.ok)) log(`${where} cannot be read: ${redact(outcome.error.message)}`)
    return outcome
  }
}
