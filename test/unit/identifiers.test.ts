import {expect} from 'chai'
import fc from 'fast-check'
import {IdentifierError, quoteSqlIdentifier, validateRedisKey, validateSqlIdentifier} from '../../src/backends/identifiers.js'

describe('validateSqlIdentifier', () => {
  it('accepts letters, digits and _ not starting with a digit', () => {
    for (const name of ['ipc', 'events', '_x', 'A1_b2', 'ipc_test_lx2k_123_1_ab9z', 'a'.repeat(128)]) {
      expect(validateSqlIdentifier(name, 'database name'), name).to.equal(name)
    }
  })

  it('rejects everything else with an IdentifierError that names what was wrong', () => {
    const bad = ['', '1abc', 'a b', 'a-b', 'a.b', 'ipc`; DROP TABLE x; --', "it's", 'a"b', 'é', 'a\nb', 'a'.repeat(129)]
    for (const name of bad) {
      expect(() => validateSqlIdentifier(name, 'ClickHouse table name'), JSON.stringify(name))
        .to.throw(IdentifierError, 'invalid ClickHouse table name')
        .with.property('name', 'IdentifierError')
    }
  })

  it('never accepts a name containing a quote, backtick, space, dot or semicolon', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('`', "'", '"', ' ', '.', ';', '\\'), fc.string(), (before, special, after) => {
        expect(() => validateSqlIdentifier(`${before}${special}${after}`, 'name')).to.throw(IdentifierError)
      }),
    )
  })

  it('quotes a valid name with backticks', () => {
    expect(quoteSqlIdentifier('ipc', 'database name')).to.equal('`ipc`')
    expect(() => quoteSqlIdentifier('a`b', 'database name')).to.throw(IdentifierError)
  })
})

describe('validateRedisKey', () => {
  it('accepts printable ASCII keys without spaces', () => {
    for (const key of ['ipc:unique_device_ips', 'a', 'x{tag}:1', '~!@#$%^&*()', 'k'.repeat(512)]) expect(validateRedisKey(key)).to.equal(key)
  })

  it('rejects empty, spaced, control, non-ASCII and overlong keys', () => {
    for (const key of ['', 'a b', 'a\tb', 'a\nb', 'ключ', 'k'.repeat(513)]) {
      expect(() => validateRedisKey(key), JSON.stringify(key)).to.throw(IdentifierError, 'invalid Redis key')
    }
  })
})
