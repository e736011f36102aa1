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
/**
 * Most bytes one fetch returns over all partitions (`consume --fetch-max-bytes`, Kafka's
 * fetch.max.bytes). kafkajs decodes a whole fetch before the first batch is processed: at its
 * default of 10 MiB the consumer peaked at 343–378 MB RSS, at 2 MiB (256 KiB per partition) at
 * 191–240 MB, at the same rate and less CPU per event (docs/benchmarks.md, "Memory").
 */
export const DEFAULT_FETCH_MAX_BYTES = 2 * 1024 * 1024
/** Most bytes one fetch returns per partition (`consume --max-partition-fetch-bytes`, Kafka's max.partition.fetch.bytes). */
export const DEFAULT_MAX_PARTITION_FETCH_BYTES = 256 * 1024
/**
 * `consume --heap-growing-percent`: into redis, 25 kept the peak RSS at 148 MB against 234 MB with
 * V8's own growth, for 3% more CPU; 10 cost 8–10% (docs/benchmarks.md, "Memory").
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 25
/** `lag --timeout`: reaching Kafka and every request of the lag. */
export const DEFAULT_LAG_TIMEOUT_MS = 15_000
/** `ipc serve` reads the lag again every few seconds: a read that takes longer is Kafka unreachable for the page. */
export const DEFAULT_SERVE_LAG_TIMEOUT_MS = 5000
