// electron-builder afterPack hook: the static ffprobe of @ffprobe-installer is made executable by its package's
// postinstall with `chmod u+x` only, so in a package installed system-wide (a .deb, an AppImage) nobody but its owner
// could run it. Every such binary under the packed app gets mode 755, as ffmpeg-static's own install gives ffmpeg.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

/** Paths of the @ffprobe-installer binaries under `dir`. */
function findBundledFfprobes(dir) {
  const found = []
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (
        e.isFile() &&
        /^ffprobe(\.exe)?$/.test(e.name) &&
        p.split(path.sep).includes('@ffprobe-installer')
      ) {
        found.push(p)
      }
    }
  }
  walk(dir)
  return found
}

async function afterPack(context) {
  for (const p of findBundledFfprobes(context.appOutDir)) fs.chmodSync(p, 0o755)
}

module.exports = afterPack
module.exports.default = afterPack
