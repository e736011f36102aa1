import {setFlagsFromString} from 'node:v8'

/**
 * V8 grows its heap by a factor it picks from how fast the program allocates (up to 4× the live
 * heap): a consumer allocating its fetched events quickly was let grow to 200–250 MB RSS around a
 * live heap under 64 MB. A fixed, small growth factor (V8's `--heap-growing-percent`, which V8 reads
 * at every collection, so it can be set once the process runs) keeps the heap near what is live,
 * at a few percent more CPU; unlike a heap cap (`--max-old-space-size`), it cannot turn a larger
 * fetch or batch into an out-of-memory crash (docs/benchmarks.md, "Memory").
 */

/** V8 options a user may have given Node that size the heap themselves: then ipc leaves it alone. */
const HEAP_OPTIONS = /--(heap-growing-percent|max-old-space-size|max-heap-size|optimize-for-size)\b/

/** The V8 flag that sets heap growth to `percent`, or undefined for none: 0, or the user's own heap options. */
export function heapGrowthFlag(percent: number, nodeOptions: string | undefined, execArgv: readonly string[]): string | undefined {
  if (percent <= 0) return undefined
  if (HEAP_OPTIONS.test(nodeOptions ?? '') || execArgv.some((arg) => HEAP_OPTIONS.test(arg))) return undefined
  return `--heap-growing-percent=${percent}`
}

/** Sets the heap's growth for this process and its worker threads; returns the flag set, if any. */
export function limitHeapGrowth(
  percent: number,
  {nodeOptions = process.env.NODE_OPTIONS, execArgv = process.execArgv, setFlags = setFlagsFromString}: HeapGrowthContext = {},
): string | undefined {
  const flag = heapGrowthFlag(percent, nodeOptions, execArgv)
  if (flag) setFlags(flag)
  return flag
}

export interface HeapGrowthContext {
  nodeOptions?: string
  execArgv?: readonly string[]
  setFlags?: (flag: string) => void
}
