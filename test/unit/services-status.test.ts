import {expect} from 'chai'
import {parseServicesEnv, runningServices} from '../support/global.js'

describe('test service fixtures: reading scripts/services output', () => {
  it('lists the services `status` reports as running, so teardown stops only the ones setup started', () => {
    const status = [
      'redis         running  pid 5224    redis://127.0.0.1:16379',
      'redis-cluster stopped',
      'clickhouse    running  pid 5361    http://127.0.0.1:18123 (native 19000)',
      'kafka         stopped',
    ].join('\n')
    expect(runningServices(status)).to.deep.equal(['redis', 'clickhouse'])
    expect(runningServices('')).to.deep.equal([])
  })

  it('reads the export lines of `env`', () => {
    expect(parseServicesEnv("export REDIS_URL='redis://127.0.0.1:16379'\nnoise\nexport KAFKA_BROKERS='127.0.0.1:19092'\n")).to.deep.equal({
      REDIS_URL: 'redis://127.0.0.1:16379',
      KAFKA_BROKERS: '127.0.0.1:19092',
    })
  })
})
