import {setImmediate as tick} from 'node:timers/promises'

/**
 * Yields to the event loop (timers and I/O run) until `condition` holds; fails after `maxMs` with
 * what it waited for, instead of hanging until mocha's timeout.
 */
export async function until(what: string, condition: () => boolean | Promise<boolean>, maxMs = 2000): Promise<void> {
  const deadline = Date.now() + maxMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${maxMs} ms waiting for ${what}`)
    await tick()
  }
}
