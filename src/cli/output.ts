import Table from 'cli-table3'

/** True when the stream is a terminal a person reads (tables, progress); false when piped. */
export function isInteractive(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && process.env.CI !== 'true'
}

/**
 * Writes one line to stderr. Commands use this rather than oclif's logToStderr, which is silent
 * under --json: errors and warnings must reach the operator precisely when a script reads stdout.
 */
export function writeStderr(line: string): void {
  process.stderr.write(`${line}\n`)
}

/** Renders rows as a cli-table3 table for a terminal. */
export function renderTable(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const table = new Table({head: [...head], style: {head: [], border: []}})
  for (const row of rows) table.push(row.map(String))
  return table.toString()
}

/** Renders `label: value` pairs as a two-column table, for summaries. */
export function renderSummary(pairs: ReadonlyArray<readonly [string, string | number]>): string {
  const table = new Table({style: {head: [], border: []}})
  for (const [label, value] of pairs) table.push([label, String(value)])
  return table.toString()
}

/** 12345678 → `12,345,678`; fixed locale so output is the same on every machine. */
export function formatInt(value: number): string {
  return Math.round(value).toLocaleString('en-US')
}

/**
 * A single progress line rewritten in place on a terminal; silent when not interactive.
 * Call `update` as often as you like: it redraws at most every `minIntervalMs`.
 */
export class ProgressLine {
  private lastDraw = 0
  private drawn = false
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly minIntervalMs = 200,
  ) {}

  get enabled(): boolean {
    return isInteractive(this.stream)
  }

  update(text: string, force = false): void {
    if (!this.enabled) return
    const now = Date.now()
    if (!force && now - this.lastDraw < this.minIntervalMs) return
    this.lastDraw = now
    this.stream.write(`\r\u001B[2K${text}`)
    this.drawn = true
  }

  /** Clears the line so the next normal output starts clean. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\u001B[2K')
    this.drawn = false
  }
}
