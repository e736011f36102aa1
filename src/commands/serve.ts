import {Flags} from '@oclif/core'
import {createBackend} from '../backends/registry.js'
import {backendOptionsFromFlags, backendScalingFlags} from '../cli/backend-flags.js'
import {IpcCommand} from '../cli/base-command.js'
import {EXIT_USAGE} from '../cli/exit-codes.js'
import {DEFAULT_SERVE_LAG_TIMEOUT_MS} from '../cli/defaults.js'
import {backendFlags, durationDefault, durationFlag, kafkaFlags, kafkaLogLevelFlags} from '../cli/flags.js'
import {kafkaSecurityFlags, kafkaSecurityFromFlags} from '../cli/kafka-security-flags.js'
import {writeStderr} from '../cli/output.js'
import {exitSoonIfHeldOpen, onStopSignals} from '../cli/signals.js'
import {webServerFlags, webServerOptionsFromFlags} from '../cli/web-flags.js'
import {
  createCountServer,
  type CountServerOptions,
  DEFAULT_BACKEND_TIMEOUT_MS,
  DEFAULT_CACHE_MS,
  DEFAULT_HOST,
  DEFAULT_PORT,
  MAX_ERROR_CACHE_MS,
} from '../http/count-server.js'
import {DEFAULT_DASHBOARD_ERROR_CODES, DEFAULT_DASHBOARD_REFRESH_MS, parseDashboardErrorCodes} from '../http/dashboard.js'
import {createKafka, parseBrokers} from '../kafka/client.js'
import {GroupLagReader} from '../kafka/group-lag-reader.js'
import {LAG_RETRY} from '../kafka/group-lag.js'
import type {KafkaSecurity} from '../kafka/security.js'

/** Passwords given on the command line, in every spelling an error message might repeat them. */
function secretsOf(flags: {'redis-url': string; 'clickhouse-url': string; 'clickhouse-password': string}, kafka?: KafkaSecurity): string[] {
  const sasl = kafka?.sasl as {password?: string} | undefined
  const secrets = [flags['clickhouse-password'], sasl?.password ?? '', kafka?.ssl?.passphrase ?? '']
  for (const url of [flags['redis-url'], flags['clickhouse-url']]) {
    try {
      const {password} = new URL(url)
      if (password) secrets.push(password, decodeURIComponent(password))
    } catch {
      // An unreadable URL is reported by the backend itself.
    }
  }
  return secrets.filter((secret) => secret.length > 0)
}

export default class Serve extends IpcCommand {
  static override summary = 'Serve the unique device IP count over HTTP.'

  static override description = `Answers GET /unique_ip_count with {"unique_device_ip_count": N}, GET /healthz (200, or 503 when the backend does not answer) and GET /metrics (Prometheus text format).
/unique_ip_count also takes the query parameters since, until, error_code (repeatable or comma-separated) and by (hour|day), with the meaning of the ipc count flags of the same names: /unique_ip_count?since=24h&error_code=3&by=hour answers {"unique_device_ip_count", "exact", "since", "until", "error_codes", "by", "series"}; an invalid value answers 400 (other parameters are ignored).
Every backend call times out after --backend-timeout; a count is reused for --cache, and requests arriving while a count is being queried share that one query. A failed count is retried after at most ${MAX_ERROR_CACHE_MS} ms, with a fresh backend connection.
GET /pipeline answers the pipeline's health as JSON: the lag of the consumer group --group (total, per partition, members; read from --brokers like ipc lag) and how fresh the data is (ClickHouse: the newest stored event's time; Redis: the last write), each with a state (ok, not-configured, kafka-unreachable, group-unknown, no-data, backend-down, ...); without --group the lag is "not-configured".
GET / is a dashboard page for people: the count and the pipeline's health refreshing every --dashboard-refresh, unique devices per hour (last 24 hours) and per day (last 30 days) as charts, and devices per error code; it asks only the JSON API above, needs no internet access, and --no-dashboard turns it off.
With --web-config (the web configuration file of Prometheus's exporters) it serves HTTPS, asks for client certificates and checks basic auth on every route; bound to an address other than loopback without one, it says so on stderr. Requests are bounded by --http-headers-timeout and --http-request-timeout (408), --http-max-requests in flight (503) and 1 KiB of body (413).
The server starts even when the backend is down, answers 503 with a JSON error until it is back, and stops cleanly on SIGINT/SIGTERM (in-flight requests finish, exit code 0); a second signal exits at once with code 130.`

  static override examples = [
    {description: 'Serve the Redis HyperLogLog count on the default port 5001.', command: '<%= config.bin %> <%= command.id %> --backend redis'},
    {
      description: 'Serve the exact ClickHouse count on all interfaces, port 8080.',
      command: '<%= config.bin %> <%= command.id %> --backend clickhouse --host 0.0.0.0 --port 8080',
    },
    {
      description: 'Open the dashboard in a browser at http://127.0.0.1:5001/, with error codes 0 to 4 and 100 in its table:',
      command: '<%= config.bin %> <%= command.id %> --backend clickhouse --dashboard-error-codes 0..4,100',
    },
    {
      description: "Show the lag of consumer group ipc on topic events and the data's freshness on the dashboard:",
      command: '<%= config.bin %> <%= command.id %> --backend clickhouse --brokers kafka1:9092,kafka2:9092 --group ipc --topic events',
    },
    {
      description: 'Serve HTTPS with basic auth, as a Prometheus exporter with the same web configuration file would:',
      command: '<%= config.bin %> <%= command.id %> --host 0.0.0.0 --web-config /etc/ipc/web-config.yml',
    },
    {description: 'Pick a free port (printed on stderr) and log every request as JSON.', command: '<%= config.bin %> <%= command.id %> --port 0 --access-log'},
    {
      description: 'Then ask for the devices that reported error code 3 in the last 24 hours, per hour:',
      command: 'curl "http://127.0.0.1:5001/unique_ip_count?since=24h&error_code=3&by=hour"',
    },
  ]

  static override flags = {
    ...backendFlags,
    ...backendScalingFlags,
    ...webServerFlags,
    port: Flags.integer({description: 'TCP port to listen on; 0 picks a free one.', env: 'IPC_PORT', default: DEFAULT_PORT, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', env: 'IPC_HOST', default: DEFAULT_HOST}),
    'backend-timeout': durationFlag({
      description: 'Time allowed for every backend call (connect, count) before answering 503.',
      ...durationDefault(DEFAULT_BACKEND_TIMEOUT_MS),
    }),
    cache: durationFlag({
      description: 'How long a count is reused before the backend is asked again; 0 asks for every request. A bare number is milliseconds.',
      aliases: ['cache-ms'],
      ...durationDefault(DEFAULT_CACHE_MS),
    }),
    'access-log': Flags.boolean({description: 'Write one JSON line per request to stdout.', default: false}),
    dashboard: Flags.boolean({
      description: 'Serve the dashboard page at GET /; --no-dashboard leaves only the JSON API, /healthz and /metrics.',
      env: 'IPC_DASHBOARD',
      default: true,
      allowNo: true,
    }),
    'dashboard-error-codes': Flags.string({
      description: "Error codes in the dashboard's table, one count query each: a list with ranges, e.g. 0..9 or 1,4,100..105.",
      env: 'IPC_DASHBOARD_ERROR_CODES',
      default: `${DEFAULT_DASHBOARD_ERROR_CODES[0]}..${DEFAULT_DASHBOARD_ERROR_CODES.at(-1)}`,
    }),
    'dashboard-refresh': durationFlag({
      description: 'How often the dashboard asks for the count; its charts refresh every 6th time.',
      env: 'IPC_DASHBOARD_REFRESH',
      ...durationDefault(DEFAULT_DASHBOARD_REFRESH_MS),
    }),
    group: Flags.string({description: 'Consumer group whose lag GET /pipeline and the dashboard show. Default: none (lag not shown).', env: 'IPC_GROUP'}),
    topic: Flags.string({
      description: "Only this topic's lag. Default: every topic the group has committed offsets for or members assigned to.",
      env: 'IPC_TOPIC',
    }),
    brokers: kafkaFlags.brokers,
    ...kafkaSecurityFlags,
    'lag-timeout': durationFlag({
      description: 'Time allowed for one lag read (connect included) before the lag is shown as unreachable.',
      env: 'IPC_LAG_TIMEOUT',
      ...durationDefault(DEFAULT_SERVE_LAG_TIMEOUT_MS),
    }),
    ...kafkaLogLevelFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    let errorCodes: number[]
    let web: Awaited<ReturnType<typeof webServerOptionsFromFlags>>
    let lag: CountServerOptions['lag']
    let kafkaSecurity: KafkaSecurity | undefined
    try {
      if (flags['backend-timeout'] <= 0) throw new Error('--backend-timeout must be greater than 0')
      if (flags['dashboard-refresh'] < 500) throw new Error('--dashboard-refresh must be at least 500ms')
      if (flags['lag-timeout'] <= 0) throw new Error('--lag-timeout must be greater than 0')
      errorCodes = parseDashboardErrorCodes(flags['dashboard-error-codes'])
      web = await webServerOptionsFromFlags(flags)
      if (flags.group) {
        const security = (kafkaSecurity = kafkaSecurityFromFlags(flags, 'serve'))
        const brokers = parseBrokers(flags.brokers)
        const logLevel = flags['kafka-log-level']
        const target = {brokers: brokers.join(','), group: flags.group, topic: flags.topic}
        const reader = new GroupLagReader({
          ...target,
          timeoutMs: flags['lag-timeout'],
          createKafka: () => createKafka({brokers, clientId: 'ipc-serve', logLevel, security, retry: LAG_RETRY}),
        })
        lag = {target, reader}
      }
    } catch (error) {
      this.failWith(error, {exitCode: EXIT_USAGE})
    }
    const backendOptions = {...backendOptionsFromFlags(flags), requestTimeoutMs: flags['backend-timeout']}
    const say = (message: string): void => writeStderr(`ipc serve: ${message}`)

    const stopRequested = new Promise<void>((resolve) => {
      onStopSignals({command: 'serve', stopping: 'finishing requests in flight', forcing: 'without waiting', onFirst: () => resolve()})
    })
    let server
    try {
      server = await createCountServer({
        createBackend: () => createBackend(flags.backend, backendOptions),
        cacheMs: flags.cache,
        requestTimeoutMs: flags['backend-timeout'],
        secrets: secretsOf(flags, kafkaSecurity),
        lag,
        dashboard: flags.dashboard ? {errorCodes, refreshMs: flags['dashboard-refresh']} : undefined,
        web,
        log: say,
        accessLog: flags['access-log'] ? (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`) : undefined,
      })
    } catch (error) {
      // Creating a backend does not connect: what fails here is its configuration (URL, key, names).
      this.failWith(error, {exitCode: EXIT_USAGE})
    }
    try {
      await server.listen(flags.port, flags.host)
    } catch (error) {
      this.failWith(error)
    }

    const dashboardNote = flags.dashboard ? `; dashboard at ${server.url}/` : ''
    const lagNote = lag ? `; lag of group ${lag.target.group} at ${lag.target.brokers}` : ''
    say(`listening on ${server.url} (backend ${server.backendName} ${server.backendLocation})${lagNote}${dashboardNote}`)
    if (server.exposure) say(server.exposure)
    // Connect now so the log tells at once whether the backend answers; requests do not wait for it.
    void server.probe()

    await stopRequested
    await server.close()
    say('stopped')
    exitSoonIfHeldOpen('serve')
  }
}
