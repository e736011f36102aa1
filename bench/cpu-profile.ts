/**
 * Summarises a V8 CPU profile (`node --cpu-prof …` writes one per process) by function: self time,
 * and the inclusive time of functions whose name contains one of the given words.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bin/run.js consume --topic events --from-beginning --until-idle 2s
 *   node dist/bench/cpu-profile.js /tmp/prof/*.cpuprofile [--window handleBatch] [--top 30] [--include parseEvent,add]
 *
 * --window NAME keeps only the samples between the first and the last one with NAME on the stack
 * (for a consumer: the time it processed events, without start-up, group join and the idle wait).
 */
import {readFileSync} from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string; lineNumber: number}
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? undefined : process.argv[index + 1]
}

const file = process.argv[2]
if (!file || file.startsWith('--')) {
  process.stderr.write('usage: node dist/bench/cpu-profile.js FILE.cpuprofile [--window NAME] [--top N] [--include WORD,...]\n')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const top = Number(option('top') ?? 30)
const windowName = option('window')
const included = (option('include') ?? '').split(',').filter(Boolean)

const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)

function label(node: ProfileNode): string {
  const {functionName, url, lineNumber} = node.callFrame
  const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist\/)/, '$1')
  return `${functionName || '(anonymous)'} ${where}${where ? `:${lineNumber + 1}` : ''}`
}

function stack(id: number): string[] {
  const labels: string[] = []
  for (let current: number | undefined = id; current !== undefined; current = parents.get(current)) labels.push(label(nodes.get(current) as ProfileNode))
  return labels
}

const stacks = profile.samples.map((id) => stack(id))
let first = 0
let last = stacks.length - 1
if (windowName) {
  first = stacks.findIndex((labels) => labels.some((entry) => entry.includes(windowName)))
  last = stacks.findLastIndex((labels) => labels.some((entry) => entry.includes(windowName)))
  if (first === -1) {
    process.stderr.write(`no sample has ${windowName} on its stack\n`)
    process.exit(1)
  }
}

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
let totalUs = 0
let idleUs = 0
for (let i = first; i <= last; i++) {
  // timeDeltas[i] is the time before sample i; the time spent in sample i is the next delta.
  const us = profile.timeDeltas[i + 1] ?? 0
  totalUs += us
  const labels = stacks[i]
  if (labels[0].startsWith('(idle)')) {
    idleUs += us
    continue
  }
  self.set(labels[0], (self.get(labels[0]) ?? 0) + us)
  for (const word of included) if (labels.some((entry) => entry.includes(word))) inclusive.set(word, (inclusive.get(word) ?? 0) + us)
}

const line = (us: number, name: string) => `${(us / 1000).toFixed(0).padStart(8)} ms ${((us * 100) / totalUs).toFixed(1).padStart(5)}%  ${name}`
console.log(
  `${windowName ? `window of ${windowName}` : 'whole profile'}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${((idleUs * 100) / totalUs).toFixed(1)}% idle`,
)
console.log('self time:')
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(line(us, name))
if (included.length > 0) {
  console.log('inclusive time:')
  for (const word of included) console.log(line(inclusive.get(word) ?? 0, word))
}
