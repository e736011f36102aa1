/**
 * Logs at most `perInterval` lines per key in each interval and then one line saying how many were
 * suppressed, so a flood of bad events cannot flood the terminal.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, {start: number; logged: number; suppressed: number}>()

  constructor(
    private readonly write: (line: string) => void,
    private readonly perInterval = 5,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  log(key: string, line: string): void {
    const now = this.now()
    let window = this.windows.get(key)
    if (!window || now - window.start >= this.intervalMs) {
      if (window && window.suppressed > 0) this.write(`${key}: ${window.suppressed} more suppressed`)
      window = {start: now, logged: 0, suppressed: 0}
      this.windows.set(key, window)
    }
    if (window.logged < this.perInterval) {
      window.logged++
      this.write(line)
    } else {
      window.suppressed++
    }
  }

  /** Writes the pending "suppressed" counts; call before exit. */
  flush(): void {
    for (const [key, window] of this.windows) {
      if (window.suppressed > 0) this.write(`${key}: ${window.suppressed} more suppressed`)
      window.suppressed = 0
    }
  }
}
