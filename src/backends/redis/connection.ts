import {createClient, createCluster, ErrorReply} from '@redis/client'
import {settleWithin} from '../../util/async.js'
import {errorReason} from '../../util/errors.js'
import {BackendError} from '../backend.js'
import {parseUrlWithProtocol, urlWithoutCredentials} from '../connection-url.js'
import {BackendFailures} from '../failures.js'
import {DEFAULT_REQUEST_TIMEOUT_MS} from '../options.js'
import {type ClusterSeed, parseClusterNodes} from './cluster-nodes.js'
import type {RedisOptions} from './options.js'

/** Replies that say the server is busy or temporarily unable to write: worth retrying. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY|OOM)\b/

type SingleClient = ReturnType<typeof createClient>
type ClusterClient = ReturnType<typeof createCluster>

/** The commands the backend uses, which a single Redis and a Redis Cluster both offer. */
export interface RedisCommands {
  readonly isOpen: boolean
  pfAdd(key: string, elements: string[]): Promise<number>
  pfCount(keys: string | string[]): Promise<number>
  pfMerge(destination: string, sources: string[]): Promise<unknown>
  expire(key: string, seconds: number): Promise<unknown>
  eval(script: string, options: {keys: string[]; arguments: string[]}): Promise<unknown>
  evalSha(sha1: string, options: {keys: string[]; arguments: string[]}): Promise<unknown>
  del(keys: string | string[]): Promise<number>
  get(key: string): Promise<string | null>
  close(): Promise<void>
  destroy(): void
}

/** Connection problems, timeouts and busy/loading replies are transient; WRONGTYPE, NOAUTH etc. are not. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ErrorReply) return TRANSIENT_REPLY.test(error.message)
  return true
}

/**
 * The connection to a Redis (`redis://`, `rediss://` for TLS with an optional CA bundle) or a Redis
 * Cluster (`redisClusterNodes`), with ACL credentials given apart from the URL winning over the
 * URL's. It is opened by the first request that needs it and opened again by the next request
 * after it was lost: node-redis' own reconnect loop is off, so a failure reaches the request that
 * hit it (as a BackendError from {@link failures}) instead of being retried behind its back.
 */
export class RedisConnection {
  /** Where, for messages: the URL without credentials, or `redis-cluster://host:port,…`. */
  readonly location: string
  readonly failures: BackendFailures
  readonly requestTimeoutMs: number
  /** Whether a connection was ever opened. */
  opened = false
  private readonly url: string
  private readonly credentials: {username?: string; password?: string}
  private readonly cluster?: ClusterSeed
  private client?: RedisCommands
  private opening?: Promise<RedisCommands>
  private closed?: BackendError

  /** `ca`: the PEM bundle read from `redisCaFile`. Throws a BackendError for an invalid URL or node list. */
  constructor(
    options: RedisOptions,
    private readonly ca?: Buffer,
  ) {
    this.url = options.redisUrl
    this.credentials = {
      ...(options.redisUsername ? {username: options.redisUsername} : {}),
      ...(options.redisPassword ? {password: options.redisPassword} : {}),
    }
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    if (options.redisClusterNodes !== undefined) {
      this.cluster = parseClusterNodes(options.redisClusterNodes)
      this.location = `redis-cluster://${this.cluster.nodes.map((node) => `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`).join(',')}`
    } else {
      this.location = urlWithoutCredentials(options.redisUrl)
    }
    const location = this.location
    this.failures = new BackendFailures('redis', location, {
      message: (action, error) => `Redis at ${location}: ${action}: ${errorReason(error)}`,
      isTransient,
    })
    if (!this.cluster && !parseUrlWithProtocol(options.redisUrl, ['redis:', 'rediss:'])) {
      throw new BackendError(`invalid Redis URL "${this.location}": use redis://[user:password@]host:port[/db] or rediss://...`, 'redis', this.location)
    }
  }

  /** The open connection; opens one if there is none (or it was lost). Rejects with a BackendError. */
  async commands(): Promise<RedisCommands> {
    if (this.closed) throw this.closed
    if (this.client && (this.cluster ? this.client.isOpen : (this.client as unknown as SingleClient).isReady)) return this.client
    this.opening ??= this.open().finally(() => {
      this.opening = undefined
    })
    return this.opening
  }

  /**
   * Called when a request on `client` failed: a cluster client stays "open" while one node's
   * connection is gone, so after anything but a reply it is dropped and the next request starts afresh.
   */
  requestFailed(client: RedisCommands, error: unknown): void {
    if (this.cluster && !(error instanceof ErrorReply) && this.client === client) this.discard()
  }

  /** Closes the connection (within the request timeout); later requests reject with `closed`. */
  async close(closed: BackendError): Promise<void> {
    this.closed = closed
    const client = this.client ?? (await this.opening?.catch(() => undefined))
    this.client = undefined
    if (!client?.isOpen) return
    const result = await settleWithin(
      client.close().then(() => 'closed' as const),
      this.requestTimeoutMs,
    )
    if (result === undefined && client.isOpen) client.destroy()
  }

  private discard(): void {
    const client = this.client
    this.client = undefined
    if (client?.isOpen) client.destroy()
  }

  private async open(): Promise<RedisCommands> {
    this.discard()
    const client = this.cluster ? this.createClusterClient(this.cluster) : this.createSingleClient()
    // Failures reach the caller through the command or connect that hit them; without a listener
    // node would treat the client's 'error' events as uncaught.
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (error) {
      if (client.isOpen) client.destroy()
      const reason = connectFailureReason(error, this.tls, this.connectTimeoutMs)
      throw new BackendError(`cannot connect to Redis at ${this.location}: ${reason}`, 'redis', this.location, {cause: error, retriable: isTransient(error)})
    }
    if (this.closed) {
      client.destroy()
      throw this.closed
    }
    this.opened = true
    this.client = client as unknown as RedisCommands
    return this.client
  }

  private get tls(): boolean {
    return this.cluster ? this.cluster.tls : this.url.startsWith('rediss:')
  }

  /** Shorter than the caller's own timeout, so a connection that never completes says why it failed. */
  private get connectTimeoutMs(): number {
    return Math.max(500, Math.floor(this.requestTimeoutMs * 0.8))
  }

  private createSingleClient(): SingleClient {
    return createClient({
      url: this.url,
      ...this.credentials,
      disableOfflineQueue: true,
      commandOptions: {timeout: this.requestTimeoutMs},
      socket: {connectTimeout: this.connectTimeoutMs, reconnectStrategy: false, ...(this.tls ? {tls: true as const, ca: this.ca} : {})},
    })
  }

  private createClusterClient(seed: ClusterSeed): ClusterClient {
    const socket = {connectTimeout: this.connectTimeoutMs, reconnectStrategy: false as const, ...(seed.tls ? {tls: true as const, ca: this.ca} : {})}
    return createCluster({
      rootNodes: seed.nodes.map((node) => ({socket: {...socket, host: node.host, port: node.port}})),
      defaults: {username: seed.username, password: seed.password, ...this.credentials, disableOfflineQueue: true, socket},
      commandOptions: {timeout: this.requestTimeoutMs},
    })
  }
}

/**
 * Why a connection failed, in the words a user can act on: a TLS client against a plaintext port
 * waits for a handshake that never comes, and a plaintext client against a TLS port is cut off.
 */
export function connectFailureReason(error: unknown, tls: boolean, connectTimeoutMs: number): string {
  const reason = errorReason(error)
  if (tls && /timeout/i.test(reason)) {
    return `TLS handshake failed: no TLS answer within ${connectTimeoutMs} ms (a plaintext port? it takes redis:// URLs)`
  }
  if (!tls && /socket closed unexpectedly|ECONNRESET/i.test(reason)) {
    return `the server closed the connection (${reason}): a TLS port? it takes rediss:// URLs`
  }
  return reason
}
