/**
 * Defaults of the flags, defined once: the commands' flags, the consumer and the benchmarks read
 * them from here (the backends' write defaults are theirs, in backends/options.ts, and re-exported). Service addresses match compose.yaml: every service on its
 * standard local port.
 */
export const DEFAULT_BROKERS = '127.0.0.1:9092'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
export const DEFAULT_REDIS_KEY = 'ipc:unique_device_ips'
export const DEFAULT_CLICKHOUSE_URL = 'http://127.0.0.1:8123'
export const DEFAULT_CLICKHOUSE_DATABASE = 'ipc'

export {DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_REQUEST_TIMEOUT_MS as DEFAULT_WRITE_TIMEOUT_MS} from '../backends/options.js'
/** Consumer group session timeout (`consume --session-timeout`, the pipeline's `sessionTimeoutMs`). */
export const DEFAULT_SESSION_TIMEOUT_MS = 30_000
/** How often `consume` prints "Total devices: N" (`--report-interval`). */
export const DEFAULT_REPORT_INTERVAL_MS = 30_000
/** `count --timeout`: the whole count and every request of it. */
export const DEFAULT_COUNT_TIMEOUT_MS = 5000
/** `lag --timeout`: reaching Kafka and every request of the lag. */
export const DEFAULT_LAG_TIMEOUT_MS = 15_000
