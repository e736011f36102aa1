import {type ClickHouseClient, createClient} from '@clickhouse/client'
import {expect} from 'chai'
import {BackendError} from '../../src/backends/backend.js'
import {ClickHouseBackend} from '../../src/backends/clickhouse/clickhouse-backend.js'
import {countUniqueSql} from '../../src/backends/clickhouse/queries.js'
import {createSchemaSql, schemaTables} from '../../src/backends/clickhouse/schema.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {HOUR_MS} from '../../src/query/count-query.js'
import {IdentifierError} from '../../src/backends/identifiers.js'
import {runIpc} from '../support/cli.js'
import {clickhouseUrl, uniqueName} from '../support/services.js'
import {CLEAN_ENV, exactCount, exactSeries, iso, windowEvents} from './windows-fixture.js'

/** A one-shard cluster of the test ClickHouse alone, defined in the config scripts/services writes. */
function devCluster(): string {
  const name = process.env.DEV_CLICKHOUSE_CLUSTER
  if (!name) throw new Error('DEV_CLICKHOUSE_CLUSTER is not set: run through mocha with the global setup (scripts/services defines the cluster)')
  return name
}

describe('ClickHouse cluster DDL (generated)', () => {
  const onCluster = createSchemaSql({database: 'ipc', table: 'events', layout: 'epoch-ms', cluster: 'analytics'})

  it('creates every table ON CLUSTER: local MergeTree tables, views on them, Distributed tables with the plain names', () => {
    expect(onCluster).to.have.length(9)
    for (const statement of onCluster) expect(statement, statement).to.include(' ON CLUSTER `analytics`')
    expect(onCluster[0]).to.equal('CREATE DATABASE IF NOT EXISTS `ipc` ON CLUSTER `analytics`')
    expect(onCluster[1])
      .to.match(/^CREATE TABLE IF NOT EXISTS `ipc`\.`events_local` ON CLUSTER `analytics` \(/)
      .and.include('ENGINE = ReplacingMergeTree')
    expect(onCluster[2]).to.include('`ipc`.`events_devices_local`').and.include('ReplacingMergeTree').and.include('ORDER BY device_ip')
    expect(onCluster[3]).to.include('`ipc`.`events_hourly_local`').and.include('ORDER BY (hour, error_code, device_ip)')
    expect(onCluster[4]).to.include('TO `ipc`.`events_devices_local`').and.include('FROM `ipc`.`events_local`')
    expect(onCluster[5]).to.include('TO `ipc`.`events_hourly_local`').and.include('FROM `ipc`.`events_local`')
    // epoch-ms: `timestamp` is an ALIAS in the Distributed table (a MATERIALIZED one breaks Distributed inserts on old servers).
    expect(onCluster[6]).to.match(/^CREATE TABLE IF NOT EXISTS `ipc`\.`events` ON CLUSTER `analytics` \(/)
    expect(onCluster[6])
      .to.include("timestamp DateTime('UTC') ALIAS")
      .and.include("ENGINE = Distributed('analytics', 'ipc', 'events_local', cityHash64(device_ip))")
    const datetime64 = createSchemaSql({database: 'ipc', table: 'events', layout: 'datetime64', cluster: 'analytics'})
    expect(datetime64[6]).to.equal(
      'CREATE TABLE IF NOT EXISTS `ipc`.`events` ON CLUSTER `analytics` AS `ipc`.`events_local`\nENGINE = ' +
        "Distributed('analytics', 'ipc', 'events_local', cityHash64(device_ip))",
    )
    expect(onCluster.slice(7)).to.deep.equal([
      'CREATE TABLE IF NOT EXISTS `ipc`.`events_devices` ON CLUSTER `analytics` AS ' +
        "`ipc`.`events_devices_local`\nENGINE = Distributed('analytics', 'ipc', 'events_devices_local', " +
        'cityHash64(device_ip))',
      'CREATE TABLE IF NOT EXISTS `ipc`.`events_hourly` ON CLUSTER `analytics` AS ' +
        "`ipc`.`events_hourly_local`\nENGINE = Distributed('analytics', 'ipc', 'events_hourly_local', " +
        'cityHash64(device_ip))',
    ])
  })

  it('leaves out ON CLUSTER in local mode, and the cluster entirely on a single server', () => {
    const local = createSchemaSql({database: 'ipc', table: 'events', layout: 'datetime64', cluster: 'analytics', clusterDdl: 'local'})
    expect(local.join('\n')).to.not.include('ON CLUSTER')
    expect(local.map((statement) => statement.replace(/ ON CLUSTER `analytics`/g, ''))).to.deep.equal(
      createSchemaSql({database: 'ipc', table: 'events', layout: 'datetime64', cluster: 'analytics'}).map((statement) =>
        statement.replace(/ ON CLUSTER `analytics`/g, ''),
      ),
    )
    const single = createSchemaSql({database: 'ipc', table: 'events', layout: 'epoch-ms'})
    expect(single).to.have.length(6)
    expect(single.join('\n')).to.not.include('Distributed').and.not.include('_local').and.not.include('ON CLUSTER')
    expect(schemaTables('events', false)).to.include({events: 'events', eventsLocal: 'events'})
  })

  it('refuses cluster, database and table names that are not plain identifiers', () => {
    for (const cluster of ["a'); DROP TABLE x; --", 'a b', '']) {
      expect(() => createSchemaSql({database: 'ipc', table: 'events', layout: 'epoch-ms', cluster}), cluster).to.throw(IdentifierError, 'cluster name')
    }
    expect(() => createSchemaSql({database: 'a`b', table: 'events', layout: 'epoch-ms'})).to.throw(IdentifierError, 'database')
  })

  it('reads counts through the Distributed tables, which have the plain names', () => {
    const tables = {events: '`ipc`.`events`', devices: '`ipc`.`events_devices`', hourly: '`ipc`.`events_hourly`'}
    expect(countUniqueSql(tables, 'epoch-ms', {errorCodes: []}, true)).to.equal('SELECT uniqExact(device_ip) AS count FROM `ipc`.`events_devices`')
  })
})

describe('ClickHouse cluster tables on the test server (one-shard cluster, local DDL)', () => {
  let admin: ClickHouseClient
  const database = uniqueName('ipc_test_cluster')
  const {baseMs, events} = windowEvents()

  function options(overrides: Partial<BackendOptions> = {}): BackendOptions {
    return {
      redisUrl: 'redis://unused:1',
      redisKey: 'unused',
      clickhouseUrl: clickhouseUrl(),
      clickhouseUser: 'default',
      clickhousePassword: '',
      clickhouseDatabase: database,
      clickhouseCluster: devCluster(),
      clickhouseClusterDdl: 'local',
      requestTimeoutMs: 10_000,
      ...overrides,
    }
  }

  before(async () => {
    admin = createClient({url: clickhouseUrl(), request_timeout: 10_000})
    const clickhouse = new ClickHouseBackend(options({batchSize: 700}))
    await clickhouse.connect()
    await clickhouse.add(events)
    await clickhouse.close()
  })

  after(async () => {
    await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
    await admin.close()
  })

  it('creates local ReplacingMergeTree tables, Distributed tables over them and the deduplicated view', async () => {
    const result = await admin.query({query: `SELECT name, engine FROM system.tables WHERE database = '${database}' ORDER BY name`, format: 'JSONEachRow'})
    expect(await result.json()).to.deep.equal([
      {name: 'events', engine: 'Distributed'},
      {name: 'events_deduplicated', engine: 'View'},
      {name: 'events_devices', engine: 'Distributed'},
      {name: 'events_devices_local', engine: 'ReplacingMergeTree'},
      {name: 'events_devices_mv', engine: 'MaterializedView'},
      {name: 'events_hourly', engine: 'Distributed'},
      {name: 'events_hourly_local', engine: 'ReplacingMergeTree'},
      {name: 'events_hourly_mv', engine: 'MaterializedView'},
      {name: 'events_local', engine: 'ReplacingMergeTree'},
    ])
  })

  it('inserts through the Distributed table: every event is in the local table when the insert returns', async () => {
    const result = await admin.query({query: `SELECT count() AS n FROM \`${database}\`.events_local`, format: 'JSONEachRow'})
    expect(Number((await result.json<{n: string}>())[0].n)).to.equal(events.length)
  })

  it('counts through the Distributed tables exactly: all-time, ranges, error codes and series', async () => {
    const clickhouse = new ClickHouseBackend(options())
    await clickhouse.connect()
    try {
      expect(await clickhouse.count()).to.equal(exactCount(events, {errorCodes: []}))
      expect(await clickhouse.eventCount()).to.equal(events.length)
      const range = {sinceMs: baseMs + 35 * 60_000, untilMs: baseMs + 4 * HOUR_MS + 10 * 60_000, errorCodes: [2, 9]}
      expect(await clickhouse.countUnique(range)).to.equal(exactCount(events, range))
      expect(await clickhouse.countSeries(range, 'hour')).to.deep.equal(exactSeries(events, range, 'hour'))
    } finally {
      await clickhouse.close()
    }
  })

  it('ipc count uses the cluster with --clickhouse-cluster', async () => {
    const since = baseMs + HOUR_MS
    const until = baseMs + 3 * HOUR_MS + 1
    const result = await runIpc(
      [
        'count',
        '--backend',
        'clickhouse',
        '--clickhouse-url',
        clickhouseUrl(),
        '--clickhouse-database',
        database,
        '--since',
        iso(since),
        '--until',
        iso(until),
      ],
      {env: {...CLEAN_ENV, CLICKHOUSE_CLUSTER: devCluster(), CLICKHOUSE_CLUSTER_DDL: 'local'}},
    )
    expect(result).to.include({code: 0, stderr: '', stdout: `${exactCount(events, {sinceMs: since, untilMs: until, errorCodes: []})}\n`})
  })

  it('ON CLUSTER needs distributed DDL, which this server lacks (no ZooKeeper): connect fails with a hint', async () => {
    const clickhouse = new ClickHouseBackend(options({clickhouseDatabase: uniqueName('ipc_test_oncluster'), clickhouseClusterDdl: 'on-cluster'}))
    try {
      const failure = await clickhouse.connect().catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError)
      expect((failure as BackendError).message)
        .to.include('creating the database')
        .and.include('--clickhouse-cluster-ddl local')
    } finally {
      await clickhouse.close()
    }
  })
})
