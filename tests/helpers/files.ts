/** File helpers shared by the pool tests. */
import { chmod, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Every `.part` file (an unfinished transfer or encode) below `root`. */
export async function partFiles(root: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else if (/\.part/.test(e.name)) found.push(p)
    }
  }
  await walk(root)
  return found
}

/**
 * An ffmpeg in `dir` that appends its argv (one argument per line) to `argvLog` and its environment to
 * `argvLog + '.env'`, then runs the real one: to check what a job's ffmpeg was given.
 */
export async function recordingFfmpeg(
  dir: string,
  realFfmpeg: string,
): Promise<{ wrapper: string; argvLog: string }> {
  const argvLog = join(dir, 'ffmpeg-argv.log')
  const wrapper = join(dir, 'ffmpeg-recording')
  await writeFile(
    wrapper,
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a" >> "${argvLog}"; done\nenv >> "${argvLog}.env"\nexec "${realFfmpeg}" "$@"\n`,
  )
  await chmod(wrapper, 0o755)
  return { wrapper, argvLog }
}
