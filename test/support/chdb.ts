import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {ClickHouseConnection} from '../../src/backends/clickhouse/options.js'

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

type CreateChdbConnection = (options: {path: string}) => unknown

/**
 * chdb's folder: IPC_CHDB_DIR (set by scripts/test), else installed now by `scripts/services chdb`
 * (once; later runs find it in the cache).
 */
function chdbDir(): string {
  const dir = process.env.IPC_CHDB_DIR?.trim()
  if (dir) return dir
  const installed = execFileSync('bash', [join(REPO_ROOT, 'scripts/services'), 'chdb'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']}).trim()
  process.env.IPC_CHDB_DIR = installed
  return installed
}

/**
 * A current ClickHouse engine, embedded in this process by chdb, with its data in a folder of its
 * own. `connection()` gives a new connection to it for each client: closing a client closes its
 * connection, and a backend closes its client.
 */
export class EmbeddedClickHouse {
  readonly path = mkdtempSync(join(tmpdir(), 'ipc-chdb-'))
  private readonly create: CreateChdbConnection

  constructor() {
    const require = createRequire(join(chdbDir(), 'package.json'))
    this.create = (require('chdb/connection') as {createChdbConnection: CreateChdbConnection}).createChdbConnection
  }

  connection(): ClickHouseConnection {
    return this.create({path: this.path}) as ClickHouseConnection
  }

  /** Removes the data; call after every client on it is closed. */
  remove(): void {
    rmSync(this.path, {recursive: true, force: true})
  }
}
