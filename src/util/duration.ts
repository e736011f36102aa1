/** A duration could not be read; the message says what was given and what is accepted. */
export class DurationError extends Error {
  override name = 'DurationError'
}

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000}
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/

/**
 * Parses `500ms`, `5s`, `2m`, `1h`, `7d`, `2w` (or a bare number of milliseconds) into milliseconds.
 */
export function parseDuration(input: string): number {
  const text = input.trim()
  const match = DURATION.exec(text)
  if (!match) throw new DurationError(`invalid duration "${input}": use a number with ms, s, m, h, d or w (e.g. 500ms, 5s, 2m)`)
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? 'ms']
  if (!Number.isFinite(ms)) throw new DurationError(`invalid duration "${input}": too large`)
  return Math.round(ms)
}

/** Formats milliseconds for people: `850ms`, `12.4s`, `3m 05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const minutes = Math.floor(ms / 60_000)
  const seconds = Math.floor((ms % 60_000) / 1000)
  return `${minutes}m ${String(seconds).padStart(2, '0')}s`
}
