/**
 * The ffmpeg and ffprobe processes of a job run in process groups of their own (POSIX). A Ctrl-C typed in a terminal
 * goes to the whole foreground group: it must reach Bullpen, which decides what becomes of the job (a worker's first
 * signal lets its encodes finish, a second hands them back), and not ffmpeg or ffprobe, which would stop half-way and
 * fail the job's attempt. Since they then no longer die with the terminal either, every one still running is killed
 * when this process exits (the CLI makes SIGHUP, a closed terminal, an exit).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'

/** Whether children get a process group of their own: everywhere but Windows (no such groups there). */
export const OWN_GROUP = process.platform !== 'win32'

const live = new Set<ChildProcess>()
let hooked = false

/** Kills `proc` with this process if it is still running then. */
export function killOnExit(proc: ChildProcess): void {
  if (!hooked) {
    hooked = true
    process.on('exit', () => {
      for (const p of live) p.kill('SIGKILL')
    })
  }
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  proc.once('error', () => live.delete(proc))
}

/**
 * `process.on('exit')` never runs when this process is killed outright (SIGKILL, the OOM killer, a crash): an ffmpeg
 * in a group of its own would then encode on to the end, orphaned, while its job is recovered and redone elsewhere.
 * On Linux the kernel can kill it instead, with a parent-death signal set between fork and exec; Node cannot set one,
 * so the encode is started through util-linux's `setpriv --pdeathsig KILL --`, which sets it and execs ffmpeg (same
 * process, same pid). Null where that is not available (not Linux, no setpriv, or one without --pdeathsig): there
 * the exit hook above is all there is.
 */
export function deathGuard(): readonly string[] | null {
  if (guard === undefined) guard = findDeathGuard()
  return guard
}

let guard: readonly string[] | null | undefined

function findDeathGuard(): readonly string[] | null {
  if (process.platform !== 'linux' || process.env['BULLPEN_NO_PDEATHSIG'] === '1') return null
  for (const bin of ['/usr/bin/setpriv', '/bin/setpriv']) {
    const args = ['--pdeathsig', 'KILL', '--']
    // One ~1 ms run, once per process: an old setpriv without the option fails here, not under an encode.
    const r = spawnSync(bin, [...args, 'true'], { stdio: 'ignore', timeout: 5000 })
    if (r.status === 0) return [bin, ...args]
  }
  return null
}

/** What {@link runCaptured} rejects with: execFile's shape (`code`, `killed`, `stderr`), which callers read. */
export type CapturedError = Error & { code?: string | number | null; killed?: boolean; stderr?: string }

/**
 * Runs `bin` (no shell) in its own process group and collects its output, like `execFile`, which cannot do that.
 * Rejects with the spawn error (ENOENT, EACCES), or on a non-zero exit, a timeout or too much output.
 */
export function runCaptured(
  bin: string,
  args: readonly string[],
  opts: { timeoutMs: number; maxBuffer: number },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      windowsHide: true,
      detached: OWN_GROUP,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    killOnExit(child)
    const out: Buffer[] = []
    const err: Buffer[] = []
    let size = 0
    let killed = false
    let settled = false
    const stop = (): void => {
      killed = true
      child.kill('SIGKILL')
    }
    const timer = setTimeout(stop, opts.timeoutMs)
    child.on('error', (e) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(Object.assign(e, { stderr: '' }))
    })
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > opts.maxBuffer) stop()
      else out.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    child.on('close', (code) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString('utf8')
      const stderr = Buffer.concat(err).toString('utf8')
      if (code === 0 && !killed) {
        resolve({ stdout, stderr })
        return
      }
      const e: CapturedError = new Error(`Command failed: ${bin} ${args.join(' ')}\n${stderr}`)
      e.code = code
      e.killed = killed
      e.stderr = stderr
      reject(e)
    })
  })
}
