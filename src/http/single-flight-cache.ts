import {EventEmitter} from 'node:events'

/** An answer that knows when it was completed and whether it succeeded (errors are cached shorter). */
export interface Outcome {
  ok: boolean
  completedAt: number
}

/** Where an answer came from: the cache, a query already in flight, or a new query. */
export type OutcomeSource = 'cache' | 'shared' | 'backend'

export interface SingleFlightCacheOptions {
  /** How long a successful answer is served from the cache. */
  cacheMs: number
  /** How long a failed answer is served from the cache. */
  errorCacheMs: number
  /** Answers kept at most; the oldest goes first. */
  maxEntries: number
  now: () => number
}

/**
 * Answers per key from a short cache, or from the one query in flight for that key (single
 * flight), or from a new query: however many requests arrive, a key costs one backend query at a
 * time and at most one per cache period.
 */
export class SingleFlightCache<V extends Outcome> extends EventEmitter<{answered: [source: OutcomeSource]}> {
  private readonly answers = new Map<string, V>()
  private readonly inFlight = new Map<string, Promise<V>>()

  constructor(private readonly options: SingleFlightCacheOptions) {
    super()
  }

  /**
   * The answer for `key`; `load` runs only when no fresh answer and no query in flight exist. An
   * `answered` event tells at once (before a shared query completes) where the answer comes from.
   */
  async get(key: string, load: () => Promise<V>): Promise<{value: V; source: OutcomeSource}> {
    const cached = this.answers.get(key)
    if (cached && this.isFresh(cached)) return this.answer(cached, 'cache')
    const flying = this.inFlight.get(key)
    if (flying) {
      this.emit('answered', 'shared')
      return {value: await flying, source: 'shared'}
    }
    this.emit('answered', 'backend')
    const query = load()
      .then((value) => {
        this.answers.delete(key)
        this.answers.set(key, value)
        // Maps iterate in insertion order: the first key is the oldest answer.
        if (this.answers.size > this.options.maxEntries) this.answers.delete(this.answers.keys().next().value as string)
        return value
      })
      .finally(() => this.inFlight.delete(key))
    this.inFlight.set(key, query)
    return {value: await query, source: 'backend'}
  }

  private answer(value: V, source: OutcomeSource): {value: V; source: OutcomeSource} {
    this.emit('answered', source)
    return {value, source}
  }

  /** The last answer stored for `key`, fresh or not. */
  last(key: string): V | undefined {
    return this.answers.get(key)
  }

  /** Resolves once every query in flight has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.inFlight.values())
  }

  private isFresh(outcome: Outcome): boolean {
    const age = this.options.now() - outcome.completedAt
    return age >= 0 && age < (outcome.ok ? this.options.cacheMs : this.options.errorCacheMs)
  }
}
