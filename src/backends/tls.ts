import {readFileSync} from 'node:fs'
import {BackendError} from './backend.js'

/** Reads the PEM CA bundle a backend's TLS connections trust; a BackendError naming the file if it cannot. */
export function readCaFile(file: string, service: string, backend: string, location: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new BackendError(`cannot read the ${service} CA file ${file}: ${(error as NodeJS.ErrnoException).code}`, backend, location)
  }
}
