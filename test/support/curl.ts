import {spawn} from 'node:child_process'

/** What the curl binary did: its exit code (0, or e.g. 35/56 for a refused TLS connection), the HTTP status and body. */
export interface CurlResult {
  exitCode: number | null
  /** 0 when no HTTP answer came. */
  status: number
  headers: string
  body: string
  stderr: string
}

/** Runs `curl -sS -i --max-time 10 ...args url`. */
export function curl(url: string, ...args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-i', '--max-time', '10', ...args, url], {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (exitCode) => {
      const split = stdout.indexOf('\r\n\r\n')
      const headers = split < 0 ? stdout : stdout.slice(0, split)
      const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1] ?? 0)
      resolve({exitCode, status, headers, body: split < 0 ? '' : stdout.slice(split + 4), stderr})
    })
  })
}
