import {expect} from 'chai'
import {copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {REPO_ROOT} from '../support/cli.js'
import {alertNames, prometheusBinary, promtool, RULES_FILE, RULES_TESTS_FILE, withForDuration} from '../support/prometheus.js'

/**
 * deploy/prometheus/ipc-rules.yml checked and unit-tested by Debian's promtool, as an operator
 * would before loading it: `promtool check rules` and `promtool test rules` with the synthetic
 * series of ipc-rules.test.yml.
 */
describe('Prometheus rules (deploy/prometheus): promtool', function () {
  this.timeout(300_000)
  let scratch: string

  before(() => {
    prometheusBinary()
    scratch = mkdtempSync(join(tmpdir(), 'ipc-rules-'))
  })

  after(() => rmSync(scratch, {recursive: true, force: true}))

  it('passes promtool check rules', () => {
    const result = promtool(['check', 'rules', 'ipc-rules.yml'])
    expect(result.code, result.output).to.equal(0)
    expect(result.output).to.match(/SUCCESS: 12 rules found/)
  })

  it('passes promtool test rules, which tests every alert', () => {
    const result = promtool(['test', 'rules', 'ipc-rules.test.yml'])
    expect(result.code, result.output).to.equal(0)
    expect(result.output).to.match(/SUCCESS/)
    const tested = new Set([...readFileSync(RULES_TESTS_FILE, 'utf8').matchAll(/alertname: (\S+)/g)].map((match) => match[1]))
    expect([...tested].sort()).to.deep.equal(alertNames(readFileSync(RULES_FILE, 'utf8')).sort())
  })

  it("accepts the README's scrape configuration with the rules file", () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('\n## Prometheus\n'))
    const config = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
    expect(config).to.include('rule_files:')
    writeFileSync(join(scratch, 'prometheus.yml'), config!.replace('/etc/prometheus/ipc-rules.yml', RULES_FILE))
    const result = promtool(['check', 'config', 'prometheus.yml'], scratch)
    expect(result.code, result.output).to.equal(0)
    expect(result.output).to.match(/SUCCESS: 12 rules found/)
  })

  it('fails a rules test whose expectation is wrong', () => {
    copyFileSync(RULES_FILE, join(scratch, 'ipc-rules.yml'))
    const tests = readFileSync(RULES_TESTS_FILE, 'utf8')
    // The lag alert expected firing at 14m, while it is still pending there.
    const early = tests.replace('eval_time: 16m', 'eval_time: 14m')
    expect(early).not.to.equal(tests)
    writeFileSync(join(scratch, 'early.test.yml'), early)
    const result = promtool(['test', 'rules', 'early.test.yml'], scratch)
    expect(result.code).to.equal(1)
    expect(result.output).to.match(/FAILED:[\s\S]*alertname: IpcConsumerLagGrowing, time: 14m/)
  })

  it('fails a rules file with a broken expression', () => {
    const broken = readFileSync(RULES_FILE, 'utf8').replace('ipc_consumer_ready == 0', 'ipc_consumer_ready ==')
    writeFileSync(join(scratch, 'broken.yml'), broken)
    const result = promtool(['check', 'rules', 'broken.yml'], scratch)
    expect(result.code).to.equal(1)
    expect(result.output).to.match(/FAILED/)
  })

  it('keeps every rule valid with the short for: durations of the Prometheus test', () => {
    const short = withForDuration(readFileSync(RULES_FILE, 'utf8'), '5s')
    expect(short.match(/^\s+for: .+$/gm))
      .to.have.lengthOf(8)
      .and.satisfy((lines: string[]) => lines.every((line) => line.trim() === 'for: 5s'))
    writeFileSync(join(scratch, 'short.yml'), short)
    const result = promtool(['check', 'rules', 'short.yml'], scratch)
    expect(result.code, result.output).to.equal(0)
  })
})
