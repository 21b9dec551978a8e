#!/usr/bin/env node
'use strict'
// Thin launcher so that `npx bullpen` works after `npm run build`; the CLI itself is bundled to out/main/cli.js.
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const cli = join(__dirname, '..', 'out', 'main', 'cli.js')
if (!existsSync(cli)) {
  console.error('bullpen: the CLI is not built yet. Run `npm run build` first.')
  process.exit(70)
}
require(cli)
