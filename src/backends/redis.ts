import type {BackendOptions} from './registry.js'
import {MemoryBackend} from './memory.js'

// Placeholder until the real implementation lands in this change.
export class RedisBackend extends MemoryBackend {
  constructor(_options: BackendOptions) {
    super()
  }
}
