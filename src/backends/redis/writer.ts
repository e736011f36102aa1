import {ErrorReply} from '@redis/client'
import {HOUR_MS} from '../../query/count-query.js'
import type {BackendError, DeviceEvent} from '../backend.js'
import type {BatchSink, WriteBatch} from '../batch-writer.js'
import type {RedisConnection} from './connection.js'
import type {RedisKeys} from './keys.js'
import {WRITE_SCRIPT, WRITE_SCRIPT_SHA1} from './scripts.js'

/** Devices per script call; a larger batch becomes several calls, pipelined in the same round trip. */
export const SCRIPT_MAX_DEVICES = 50_000

/**
 * What one write holds: the distinct devices of the events added since the last write, per (UTC hour,
 * error code) as one number, `hour * 256 + code + 128` (error codes are -128..127).
 */
export class DeviceSets implements WriteBatch<DeviceEvent> {
  size = 0
  readonly byHourCode = new Map<number, Set<string>>()

  append({deviceIp, errorCode, timestampMs}: DeviceEvent): void {
    this.size++
    const group = Math.floor(timestampMs / HOUR_MS) * 256 + errorCode + 128
    let devices = this.byHourCode.get(group)
    if (!devices) this.byHourCode.set(group, (devices = new Set()))
    devices.add(deviceIp)
  }
}

/** The arguments of the WRITE_SCRIPT calls of one write. */
type KeyWrites = Array<{keys: string[]; args: string[]}>

/**
 * The write encoding of the redis backend, as the sink of its BatchWriter: a batch of
 * {@link DeviceSets} goes out as {@link WRITE_SCRIPT} calls, one command per up to
 * SCRIPT_MAX_DEVICES devices, issued together so they share one round trip.
 */
export class RedisWriter implements BatchSink<DeviceEvent, DeviceSets> {
  /** `bucketTtlMs`: how long an hourly key is kept after its hour ended; 0: for ever. */
  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly bucketTtlMs: number,
  ) {}

  newBatch(): DeviceSets {
    return new DeviceSets()
  }

  describe(batch: DeviceSets): string {
    return `writing ${batch.size} events`
  }

  failure(action: string, error: unknown): BackendError {
    return this.connection.failures.wrap(action, error)
  }

  async write(batch: DeviceSets): Promise<void> {
    const writes = this.writesFor(batch, Date.now())
    const client = await this.connection.commands()
    const run = async (call: KeyWrites[number]) => {
      const options = {keys: call.keys, arguments: call.args}
      try {
        await client.evalSha(WRITE_SCRIPT_SHA1, options)
      } catch (error) {
        // The server (a restarted one, or another cluster node after a failover) does not have the script yet.
        if (!(error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))) throw error
        await client.eval(WRITE_SCRIPT, options)
      }
    }
    try {
      // Issued in the same tick: pipelined by node-redis, one round trip for all calls.
      await Promise.all(writes.map(run))
    } catch (error) {
      this.connection.requestFailed(client, error)
      throw error
    }
  }

  /** The script calls that write one batch; hourly keys past their TTL are left out. */
  private writesFor(batch: DeviceSets, nowMs: number): KeyWrites {
    const calls: ScriptCall[] = []
    let call: ScriptCall | undefined
    for (const [group, devices] of batch.byHourCode) {
      const hour = Math.floor(group / 256)
      const code = group - hour * 256 - 128
      const keepsHour = this.bucketTtlMs === 0 || (hour + 1) * HOUR_MS + this.bucketTtlMs > nowMs
      const expiresAt = this.bucketTtlMs === 0 ? 0 : Math.ceil(((hour + 1) * HOUR_MS + this.bucketTtlMs) / 1000)
      const iterator = devices.values()
      for (let left = devices.size; left > 0;) {
        if (!call || call.devices >= SCRIPT_MAX_DEVICES) calls.push((call = new ScriptCall(this.keys, nowMs)))
        const take = Math.min(left, SCRIPT_MAX_DEVICES - call.devices)
        const codeIndex = call.keyIndex(this.keys.errorCode(code), 0)
        const hourIndex = keepsHour ? call.keyIndex(this.keys.hour(hour * HOUR_MS), expiresAt) : 0
        const hourCodeIndex = keepsHour ? call.keyIndex(this.keys.hourErrorCode(hour * HOUR_MS, code), expiresAt) : 0
        const separate: string[] = []
        const joined: string[] = []
        for (let index = 0; index < take; index++) {
          const device = iterator.next().value as string
          if (device === '' || device.includes('\n')) separate.push(device)
          else joined.push(device)
        }
        call.groups.push(String(codeIndex), String(hourIndex), String(hourCodeIndex), String(separate.length), ...separate, joined.join('\n'))
        call.devices += take
        left -= take
      }
    }
    return calls.map((each) => each.arguments())
  }
}

/** One WRITE_SCRIPT call being built: its keys (each once, the all-time and last-write keys first), expiries and groups. */
class ScriptCall {
  readonly keys: string[]
  private readonly indexes = new Map<string, number>()
  private readonly expiries: string[] = []
  readonly groups: string[] = []
  devices = 0

  constructor(
    keys: RedisKeys,
    private readonly writtenAtMs: number,
  ) {
    this.keys = [keys.allTime, keys.lastWrite()]
  }

  /** The 1-based index of `key` in KEYS, adding it (with its expiry, 0 for none) the first time. */
  keyIndex(key: string, expiresAt: number): number {
    let index = this.indexes.get(key)
    if (index === undefined) {
      this.keys.push(key)
      index = this.keys.length
      this.indexes.set(key, index)
      if (expiresAt > 0) this.expiries.push(String(index), String(expiresAt))
    }
    return index
  }

  arguments(): {keys: string[]; args: string[]} {
    return {keys: this.keys, args: [String(this.writtenAtMs), String(this.expiries.length / 2)].concat(this.expiries, this.groups)}
  }
}
