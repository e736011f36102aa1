import {type ChildProcess, spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {sleep} from '../../src/util/async.js'

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const RUN_JS = `${REPO_ROOT}bin/run.js`

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv
  input?: string
  /** Kill the process (SIGKILL) if it runs longer than this. Default 120 s. */
  timeoutMs?: number
  /** An installed `ipc` executable to run instead of this checkout's `node bin/run.js`. */
  executable?: string
  /** Default: the repository root. */
  cwd?: string
}

/** A running `ipc` process: its output so far, and a promise of its end. */
export interface RunningCli {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  done: Promise<CliResult>
}

/** Starts `node bin/run.js ...args` (or `options.executable ...args`) with the test environment plus `options.env`. */
export function startIpc(args: readonly string[], options: CliOptions = {}): RunningCli {
  const [command, ...commandArgs] = options.executable ? [options.executable, ...args] : [process.execPath, RUN_JS, ...args]
  const child = spawn(command, commandArgs, {
    cwd: options.cwd ?? REPO_ROOT,
    env: {...process.env, ...options.env},
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  if (options.input !== undefined) child.stdin!.end(options.input)
  else child.stdin!.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    })
  })
  return {child, stdout: () => stdout, stderr: () => stderr, done}
}

/** Runs `ipc ...args` to completion. */
export function runIpc(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startIpc(args, options).done
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}
