import type {createClient} from '@clickhouse/client'
import type {WriterOptions} from '../options.js'

export interface ClickHouseOptions extends WriterOptions {
  clickhouseUrl: string
  clickhouseUser: string
  clickhousePassword: string
  clickhouseDatabase: string
  /** PEM CA bundle that signs the server's certificate, for `https://` URLs. Default: the system CAs. */
  clickhouseCaFile?: string
  /** ClickHouse table name; default `events`. */
  clickhouseTable?: string
  /** ClickHouse cluster name (`remote_servers`): local tables on every node and Distributed tables over them. */
  clickhouseCluster?: string
  /**
   * How cluster tables are created: `on-cluster` (one `ON CLUSTER` DDL for every node; needs
   * ZooKeeper/ClickHouse Keeper) or `local` (this node only; run once against every node). Default `on-cluster`.
   */
  clickhouseClusterDdl?: ClusterDdlMode
  /**
   * A connection that replaces HTTP for the client, such as `chdb/connection`'s embedded engine
   * (library use; the URL then only names the backend in messages).
   */
  clickhouseConnection?: ClickHouseConnection
}

export type ClickHouseConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>

export const CLUSTER_DDL_MODES = ['on-cluster', 'local'] as const
export type ClusterDdlMode = (typeof CLUSTER_DDL_MODES)[number]

export function parseClusterDdlMode(text: string): ClusterDdlMode {
  if ((CLUSTER_DDL_MODES as readonly string[]).includes(text)) return text as ClusterDdlMode
  throw new Error(`invalid ClickHouse cluster DDL mode "${text}": use ${CLUSTER_DDL_MODES.join(' or ')}`)
}
