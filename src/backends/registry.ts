import type {CountBackend} from './backend.js'
import type {ClickHouseOptions} from './clickhouse/options.js'
import {MemoryBackend} from './memory.js'
import type {RedisOptions} from './redis/options.js'

export const BACKEND_NAMES = ['redis', 'clickhouse', 'memory'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]

/** Everything any backend may need; each implementation reads its own part. */
export type BackendOptions = RedisOptions & ClickHouseOptions

type Factory = (options: BackendOptions) => Promise<CountBackend>

const FACTORIES: Record<BackendName, Factory> = {
  memory: async () => new MemoryBackend(),
  redis: async (options) => new (await import('./redis/redis-backend.js')).RedisBackend(options),
  clickhouse: async (options) => new (await import('./clickhouse/clickhouse-backend.js')).ClickHouseBackend(options),
}

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name)
}

/** Creates (does not connect) the backend registered under `name`. */
export async function createBackend(name: string, options: BackendOptions): Promise<CountBackend> {
  if (!isBackendName(name)) throw new Error(`unknown backend "${name}": use one of ${BACKEND_NAMES.join(', ')}`)
  return FACTORIES[name](options)
}
