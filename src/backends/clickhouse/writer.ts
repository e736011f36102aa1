import {Readable} from 'node:stream'
import type {BackendError, DeviceEvent} from '../backend.js'
import type {BatchSink} from '../batch-writer.js'
import type {ClickHouseConnection} from './connection.js'
import type {EventsTable} from './events-table.js'
import {type TableShape, TsvBatch} from './tsv-batch.js'

/**
 * The write encoding of the clickhouse backend, as the sink of its BatchWriter: a batch is the
 * TabSeparated rows of its events ({@link TsvBatch}, in the table's layout), sent as one insert.
 */
export class ClickHouseWriter implements BatchSink<DeviceEvent, TsvBatch> {
  constructor(
    private readonly connection: ClickHouseConnection,
    private readonly table: EventsTable,
  ) {}

  /** A batch encodes rows as events arrive; the backend connects (and learns the table's shape) before it accepts any. */
  newBatch(): TsvBatch {
    return new TsvBatch(() => this.table.shape as TableShape)
  }

  describe(batch: TsvBatch): string {
    return `inserting ${batch.size} rows`
  }

  failure(action: string, error: unknown): BackendError {
    return this.connection.failures.wrap(action, error)
  }

  async write(batch: TsvBatch): Promise<void> {
    await this.connection.insert({
      table: this.table.qualified,
      values: Readable.from([batch.bytes], {objectMode: false}),
      format: 'TabSeparated',
      columns: this.table.insertColumns(),
      clickhouse_settings: this.table.insertSettings,
    })
  }
}
