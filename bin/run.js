#!/usr/bin/env node
import {execute} from '@oclif/core'
import {redactedCommandLine} from '../dist/src/cli/process-title.js'

// `ps` shows the process title: keep passwords given as flags or in URLs out of it.
process.title = `ipc ${redactedCommandLine(process.argv.slice(2))}`
await execute({dir: import.meta.url})
