import {readFileSync} from 'node:fs'
import {parseErrorCode} from '../query/count-query.js'

/**
 * The dashboard page of `ipc serve` (`GET /`): one HTML page, its script and its style sheet,
 * served from `assets/dashboard/` by the server itself, so it works with no internet access. The
 * page asks only the JSON API (`/unique_ip_count`, `/pipeline`, `/healthz`): every figure it shows goes through
 * the server's cache, single-flight and backend timeout like any other client's request.
 */
export interface DashboardOptions {
  /** The error codes of the breakdown table, one count query each. */
  errorCodes: readonly number[]
  /** How often the page asks for the current count, in ms; charts refresh every 6th time. */
  refreshMs: number
}

export interface StaticFile {
  body: string
  contentType: string
}

/** Error codes the device simulator (`ipc produce`) emits; a fleet with others sets --dashboard-error-codes. */
export const DEFAULT_DASHBOARD_ERROR_CODES: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
export const DEFAULT_DASHBOARD_REFRESH_MS = 5000
/** More codes than this would make one page load a burst of count queries. */
export const MAX_DASHBOARD_ERROR_CODES = 32

export class DashboardOptionError extends Error {
  override name = 'DashboardOptionError'
}

/** Reads `0,1,2` and ranges `0..9` (codes may be negative: `-5..-1`). */
export function parseDashboardErrorCodes(text: string, flag = '--dashboard-error-codes'): number[] {
  const codes = new Set<number>()
  for (const part of text.split(',').map((item) => item.trim())) {
    if (part === '') continue
    const range = /^([+-]?\d+)\.\.([+-]?\d+)$/.exec(part)
    try {
      if (range) {
        const first = parseErrorCode(range[1], flag)
        const last = parseErrorCode(range[2], flag)
        if (first > last) throw new DashboardOptionError(`invalid ${flag} range "${part}": the first code is greater than the last`)
        for (let code = first; code <= last; code++) codes.add(code)
      } else codes.add(parseErrorCode(part, flag))
    } catch (error) {
      if (error instanceof DashboardOptionError) throw error
      throw new DashboardOptionError(error instanceof Error ? error.message : String(error))
    }
  }
  if (codes.size === 0) throw new DashboardOptionError(`${flag} names no error code`)
  if (codes.size > MAX_DASHBOARD_ERROR_CODES) throw new DashboardOptionError(`${flag} names ${codes.size} codes; at most ${MAX_DASHBOARD_ERROR_CODES}`)
  return [...codes].sort((a, b) => a - b)
}

const ASSETS = new URL('../../../assets/dashboard/', import.meta.url)
const FILES: Record<string, {name: string; contentType: string}> = {
  '/': {name: 'index.html', contentType: 'text/html; charset=utf-8'},
  '/dashboard.js': {name: 'dashboard.js', contentType: 'text/javascript; charset=utf-8'},
  '/dashboard.css': {name: 'dashboard.css', contentType: 'text/css; charset=utf-8'},
  '/pipeline-view.js': {name: 'pipeline-view.js', contentType: 'text/javascript; charset=utf-8'},
}

/** The page takes nothing from elsewhere: no CDN, no inline script, no frames. */
export const DASHBOARD_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

function escapeAttribute(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;')
}

/** The dashboard's files by path, read once; the page carries its settings as data attributes. */
export function dashboardFiles(options: DashboardOptions): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>()
  for (const [path, {name, contentType}] of Object.entries(FILES)) {
    let body = readFileSync(new URL(name, ASSETS), 'utf8')
    if (name === 'index.html') {
      body = body
        .replace('{{ERROR_CODES}}', escapeAttribute(options.errorCodes.join(',')))
        .replace('{{REFRESH_MS}}', escapeAttribute(String(options.refreshMs)))
    }
    files.set(path, {body, contentType})
  }
  return files
}
