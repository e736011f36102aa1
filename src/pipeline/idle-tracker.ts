/**
 * Fetches are answered at least every maxWaitTimeInMs (500 ms) plus the broker's round trip; a
 * longer silence means the broker is unreachable, which does not count as idle.
 */
export const FETCH_GAP_MS = 5000

/**
 * Tells how long a consumer has been caught up, for `--until-idle`: a member of its group, its
 * fetches answered, no batch in work and no message. Time between group generations, while the
 * client restarts or while the broker does not answer fetches is not idleness.
 */
export class IdleTracker {
  /** Start of the current stretch of answered fetches without messages. */
  private idleSince?: number
  private lastFetchAt = 0
  private batchesInWork = 0

  constructor(private readonly fetchGapMs = FETCH_GAP_MS) {}

  /** The group assigned partitions. */
  joined(now: number): void {
    this.idleSince = now
  }

  /** Between generations, or the client restarting: no partitions, so not idle until the next join. */
  leftGeneration(): void {
    this.idleSince = undefined
  }

  /** A fetch was answered. After a gap without answers, idle time starts anew. */
  fetched(now: number): void {
    if (now - this.lastFetchAt > this.fetchGapMs && this.idleSince !== undefined) this.idleSince = now
    this.lastFetchAt = now
  }

  batchStarted(): void {
    this.batchesInWork++
  }

  /** A batch may have waited long for the backend: idle time counts from its end. */
  batchEnded(now: number): void {
    this.batchesInWork--
    if (this.idleSince !== undefined) this.idleSince = now
  }

  get inWork(): number {
    return this.batchesInWork
  }

  /** Whether the consumer has been idle for at least `ms` at `now`. */
  idleFor(ms: number, now: number): boolean {
    if (this.idleSince === undefined || this.batchesInWork > 0 || now - this.lastFetchAt > this.fetchGapMs) return false
    return now - this.idleSince >= ms
  }
}
