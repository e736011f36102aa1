import {type ChildProcess, execFileSync, spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {REPO_ROOT, waitFor} from './cli.js'
import {closedPort} from './tcp-proxy.js'

export const RULES_DIR = join(REPO_ROOT, 'deploy/prometheus')
export const RULES_FILE = join(RULES_DIR, 'ipc-rules.yml')
export const RULES_TESTS_FILE = join(RULES_DIR, 'ipc-rules.test.yml')

/**
 * Debian's prometheus binary: IPC_PROMETHEUS (set by scripts/test), else installed now when missing
 * by `scripts/services prometheus`; promtool comes in the same package, beside it.
 */
export function prometheusBinary(): string {
  const path = process.env.IPC_PROMETHEUS?.trim()
  if (path) return path
  const installed = execFileSync('bash', [join(REPO_ROOT, 'scripts/services'), 'prometheus'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  process.env.IPC_PROMETHEUS = installed
  return installed
}

/** Runs promtool with `args` in `cwd`; its exit code and output (stdout and stderr together). */
export function promtool(args: readonly string[], cwd = RULES_DIR): {code: number | null; output: string} {
  const result = spawnSync(join(dirname(prometheusBinary()), 'promtool'), args, {cwd, encoding: 'utf8'})
  if (result.error) throw result.error
  return {code: result.status, output: `${result.stdout}${result.stderr}`}
}

/** A scrape job of the generated prometheus.yml: its name and `host:port` targets. */
export interface ScrapeJob {
  job: string
  targets: string[]
  metricsPath?: string
  /** `https` for a target with a web config; default `http`. */
  scheme?: 'http' | 'https'
  /** Prometheus's tls_config: the CA that signed the target's certificate, and a client certificate. */
  tls?: {caFile: string; certFile?: string; keyFile?: string}
  basicAuth?: {username: string; password: string}
}

/** One entry of `GET /api/v1/targets`. */
export interface PrometheusTarget {
  labels: Record<string, string>
  health: 'up' | 'down' | 'unknown'
  lastError: string
}

/** The lines of a scrape job in prometheus.yml. */
function scrapeJobLines(job: ScrapeJob): string[] {
  const quoted = (value: string): string => JSON.stringify(value)
  const {tls, basicAuth} = job
  return [
    `  - job_name: ${quoted(job.job)}`,
    `    metrics_path: ${quoted(job.metricsPath ?? '/metrics')}`,
    `    scheme: ${job.scheme ?? 'http'}`,
    ...(tls
      ? [
          '    tls_config:',
          `      ca_file: ${quoted(tls.caFile)}`,
          ...(tls.certFile ? [`      cert_file: ${quoted(tls.certFile)}`] : []),
          ...(tls.keyFile ? [`      key_file: ${quoted(tls.keyFile)}`] : []),
        ]
      : []),
    ...(basicAuth ? ['    basic_auth:', `      username: ${quoted(basicAuth.username)}`, `      password: ${quoted(basicAuth.password)}`] : []),
    '    static_configs:',
    `      - targets: ${JSON.stringify(job.targets)}`,
  ]
}

/** One entry of `GET /api/v1/alerts`. */
export interface PrometheusAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  state: 'pending' | 'firing'
  activeAt: string
  value: string
}

/** One rule of `GET /api/v1/rules`. */
export interface PrometheusRule {
  name: string
  type: 'alerting' | 'recording'
  health: 'ok' | 'err' | 'unknown'
  lastError?: string
  state?: 'inactive' | 'pending' | 'firing'
}

/**
 * A Prometheus server of its own on a free port of 127.0.0.1, with its configuration and data in a
 * temporary folder, scraping `jobs` every second and evaluating the rules given to
 * {@link addRules} every second.
 */
export class PrometheusServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'ipc-prometheus-'))
  url = ''
  private readonly ruleFiles: string[] = []
  private child?: ChildProcess
  private log = ''

  constructor(private readonly jobs: readonly ScrapeJob[]) {}

  /** Writes a rules file into the server's folder and loads it at {@link start}. */
  addRules(name: string, text: string): this {
    const file = join(this.dir, name)
    writeFileSync(file, text)
    this.ruleFiles.push(file)
    return this
  }

  async start(): Promise<this> {
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      ...this.ruleFiles.map((file) => `  - ${JSON.stringify(file)}`),
      'scrape_configs:',
      ...this.jobs.flatMap(scrapeJobLines),
    ].join('\n')
    const configFile = join(this.dir, 'prometheus.yml')
    writeFileSync(configFile, `${config}\n`)
    const port = await closedPort()
    this.url = `http://127.0.0.1:${port}`
    const child = spawn(
      prometheusBinary(),
      [`--config.file=${configFile}`, `--storage.tsdb.path=${join(this.dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      {stdio: ['ignore', 'pipe', 'pipe']},
    )
    this.child = child
    let exited: number | null | undefined
    child.on('exit', (code) => (exited = code))
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk))
    await waitFor(
      'Prometheus to be ready',
      async () => {
        if (exited !== undefined) throw new Error(`prometheus exited with ${exited}:\n${this.log}`)
        const response = await fetch(`${this.url}/-/ready`).catch(() => undefined)
        return response?.ok ? true : undefined
      },
      60_000,
      200,
    )
    return this
  }

  /** What the server printed so far, for failure messages. */
  get output(): string {
    return this.log
  }

  async api<T>(path: string): Promise<T> {
    const response = await fetch(`${this.url}/api/v1/${path}`)
    const body = (await response.json()) as {status: string; data: T; error?: string}
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error}`)
    return body.data
  }

  async alerts(): Promise<PrometheusAlert[]> {
    return (await this.api<{alerts: PrometheusAlert[]}>('alerts')).alerts
  }

  async targets(): Promise<PrometheusTarget[]> {
    return (await this.api<{activeTargets: PrometheusTarget[]}>('targets')).activeTargets
  }

  async rules(): Promise<PrometheusRule[]> {
    const data = await this.api<{groups: Array<{rules: PrometheusRule[]}>}>('rules')
    return data.groups.flatMap((group) => group.rules)
  }

  /** The samples of an instant query: labels and value. */
  async query(expr: string): Promise<Array<{metric: Record<string, string>; value: number}>> {
    const data = await this.api<{result: Array<{metric: Record<string, string>; value: [number, string]}>}>(`query?query=${encodeURIComponent(expr)}`)
    return data.result.map((sample) => ({metric: sample.metric, value: Number(sample.value[1])}))
  }

  /** SIGTERM, the end of the process, then its data removed. */
  async stop(): Promise<void> {
    const child = this.child
    if (child && child.exitCode === null && child.signalCode === null) {
      const ended = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await ended
      clearTimeout(killer)
    }
    rmSync(this.dir, {recursive: true, force: true})
  }
}

/** The alert names of a rules file's text. */
export function alertNames(rules: string): string[] {
  return [...rules.matchAll(/^\s*- alert: (\S+)$/gm)].map((match) => match[1])
}

/**
 * The rules file's text with every `for:` set to `duration`: the shipped durations are production
 * ones (minutes), a test waits seconds.
 */
export function withForDuration(rules: string, duration: string): string {
  return rules.replace(/^(\s+for: ).+$/gm, `$1${duration}`)
}
