import {BackendError} from '../backend.js'
import {urlWithoutCredentials} from '../connection-url.js'

/** A Redis Cluster node from --redis-cluster. */
export interface ClusterNode {
  host: string
  port: number
}

/** The parsed --redis-cluster value. */
export interface ClusterSeed {
  nodes: ClusterNode[]
  username?: string
  password?: string
  tls: boolean
}

/**
 * Reads `host:port,host:port` (entries may also be `redis://[user:password@]host:port` or
 * `rediss://...`; credentials and TLS apply to every node). Throws BackendError naming the bad entry.
 */
export function parseClusterNodes(text: string): ClusterSeed {
  const seed: ClusterSeed = {nodes: [], tls: false}
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
  const invalid = (entry: string) =>
    new BackendError(
      `invalid Redis Cluster node "${urlWithoutCredentials(entry)}": use host:port (or redis://[user:password@]host:port), comma-separated`,
      'redis',
      'redis-cluster',
    )
  if (entries.length === 0) throw invalid(text)
  for (const entry of entries) {
    let url: URL
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? entry : `redis://${entry}`)
    } catch {
      throw invalid(entry)
    }
    const port = Number(url.port)
    if (
      (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
      !url.hostname ||
      !url.port ||
      !(port > 0 && port < 65_536) ||
      (url.pathname !== '' && url.pathname !== '/')
    ) {
      throw invalid(entry)
    }
    if (url.protocol === 'rediss:') seed.tls = true
    if (url.username) seed.username = decodeURIComponent(url.username)
    if (url.password) seed.password = decodeURIComponent(url.password)
    seed.nodes.push({host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port})
  }
  return seed
}
