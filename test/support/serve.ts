import {type CliOptions, type CliResult, type RunningCli, startIpc, waitFor} from './cli.js'

const LISTENING = /ipc serve: listening on (https?:\/\/127\.0\.0\.1:\d+) /

/** A running `ipc serve` and the address it printed. */
export interface RunningServe extends RunningCli {
  url: string
  /** SIGTERM, then its end. */
  stop: () => Promise<CliResult>
}

/** Starts `ipc serve --port 0 ...args` and waits for the address it prints; fails if it exits first. */
export async function startServe(args: readonly string[], options: CliOptions = {}): Promise<RunningServe> {
  const serve = startIpc(['serve', '--port', '0', ...args], options)
  let exited: CliResult | undefined
  void serve.done.then((result) => (exited = result))
  const match = await waitFor('ipc serve to print its address', () => {
    if (exited) throw new Error(`ipc serve exited with ${exited.code}: ${exited.stderr}`)
    return LISTENING.exec(serve.stderr()) ?? undefined
  })
  return {
    ...serve,
    url: match[1],
    stop: () => {
      serve.child.kill('SIGTERM')
      return serve.done
    },
  }
}
