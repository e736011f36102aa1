// Writes oclif.manifest.json (run by `npm run build`): with it, `ipc <command>` loads only that
// command's module; without it oclif imports every command (and what each pulls in) to list them.
import {Config} from '@oclif/core'
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const config = await Config.load(root)
const plugin = config.plugins.get(config.pjson.name)
if (!plugin) throw new Error(`oclif did not load the plugin ${config.pjson.name} from ${root}`)
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
