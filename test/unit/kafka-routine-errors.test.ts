import {createRequire} from 'node:module'
import {expect} from 'chai'
import {isRoutineKafkaError} from '../../src/kafka/client.js'

/** kafkajs's own messages for broker error codes, as its log entries carry them. */
const require = createRequire(import.meta.url)
const {errorCodes} = require('kafkajs/src/protocol/error.js') as {errorCodes: Array<{type: string; message: string}>}
const messageOf = (type: string) => errorCodes.find((code) => code.type === type)!.message

describe('isRoutineKafkaError: what the default log level leaves out', () => {
  for (const type of [
    'REBALANCE_IN_PROGRESS',
    'GROUP_COORDINATOR_NOT_AVAILABLE',
    'GROUP_LOAD_IN_PROGRESS',
    'NOT_COORDINATOR_FOR_GROUP',
    'LEADER_NOT_AVAILABLE',
    'NOT_LEADER_FOR_PARTITION',
  ]) {
    it(`leaves out ${type}, a state kafkajs retries`, () => {
      expect(isRoutineKafkaError(messageOf(type))).to.equal(true)
    })
  }

  for (const type of ['SASL_AUTHENTICATION_FAILED', 'UNKNOWN_TOPIC_OR_PARTITION', 'TOPIC_AUTHORIZATION_FAILED', 'CORRUPT_MESSAGE']) {
    it(`keeps ${type}`, () => {
      expect(isRoutineKafkaError(messageOf(type))).to.equal(false)
    })
  }
})
