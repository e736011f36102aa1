import {expect} from 'chai'
import {EventEmitter} from 'node:events'
import {EXIT_FORCED} from '../../src/cli/exit-codes.js'
import {onStopSignals, STOP_SIGNALS} from '../../src/cli/signals.js'

/** onStopSignals on an emitter standing in for `process`, with the lines and exits it made. */
function setUp() {
  const source = new EventEmitter()
  const lines: string[] = []
  const exits: number[] = []
  const firsts: NodeJS.Signals[] = []
  const dispose = onStopSignals({
    command: 'test',
    stopping: 'flushing',
    forcing: 'without flushing',
    onFirst: (signal) => firsts.push(signal),
    log: (line) => lines.push(line),
    exit: (code) => exits.push(code),
    source,
  })
  return {source, lines, exits, firsts, dispose}
}

describe('onStopSignals', () => {
  it('on the first SIGINT or SIGTERM starts the stop and says so, without exiting', () => {
    for (const signal of STOP_SIGNALS) {
      const {source, lines, exits, firsts} = setUp()
      source.emit(signal, signal)
      expect(firsts).to.deep.equal([signal])
      expect(lines).to.deep.equal([`ipc test: ${signal} received, stopping: flushing (signal again to force)`])
      expect(exits).to.deep.equal([])
    }
  })

  it('on a second signal, of either kind, says so and exits 130 without starting the stop again', () => {
    const {source, lines, exits, firsts} = setUp()
    source.emit('SIGTERM', 'SIGTERM')
    source.emit('SIGINT', 'SIGINT')
    expect(firsts).to.deep.equal(['SIGTERM'])
    expect(lines.at(-1)).to.equal('ipc test: second signal, exiting without flushing')
    expect(exits).to.deep.equal([EXIT_FORCED])
    expect(EXIT_FORCED).to.equal(130)
  })

  it('listens to nothing once disposed', () => {
    const {source, dispose} = setUp()
    for (const signal of STOP_SIGNALS) expect(source.listenerCount(signal)).to.equal(1)
    dispose()
    for (const signal of STOP_SIGNALS) expect(source.listenerCount(signal)).to.equal(0)
  })
})
