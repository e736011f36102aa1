#!/usr/bin/env node
// Development entry point: rebuilds the TypeScript sources, then runs the CLI from dist/.
import {execFileSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {execute} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', root], {stdio: 'inherit'})
await execute({development: true, dir: import.meta.url})
