import type {AddReceipt, CountBackend, DeviceEvent} from './backend.js'

const DURABLE: AddReceipt = {durable: Promise.resolve()}

/** Exact, in-process count. Nothing survives the process: for one-shot runs and tests. */
export class MemoryBackend implements CountBackend {
  readonly name = 'memory'
  readonly exact = true
  readonly location = 'memory'
  private readonly devices = new Set<string>()

  async connect(): Promise<void> {}

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    for (const event of events) this.devices.add(event.deviceIp)
    return DURABLE
  }

  async flush(): Promise<void> {}

  async count(): Promise<number> {
    return this.devices.size
  }

  async close(): Promise<void> {}
}
