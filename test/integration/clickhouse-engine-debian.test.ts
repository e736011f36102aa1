import {createClient} from '@clickhouse/client'
import {clickhouseUrl} from '../support/services.js'
import {describeEngineChecks} from './clickhouse-engine-suite.js'

/** The same checks as on the current engine, on the Debian server (18.16: the epoch-ms layout). */
describe('ClickHouse backend on the Debian server (18.16)', function () {
  this.timeout(120_000)
  describeEngineChecks(() => ({
    layout: 'epoch-ms',
    options: (database) => ({clickhouseUrl: clickhouseUrl(), clickhouseUser: 'default', clickhousePassword: '', clickhouseDatabase: database}),
    admin: () => createClient({url: clickhouseUrl(), request_timeout: 30_000}),
  }))
})
