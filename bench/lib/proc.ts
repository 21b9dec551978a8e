/** Running child processes for the benchmarks: timed, with captured output, and a bounded-parallel runner. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Wall time from spawn to exit. */
  ms: number
}

/** Milliseconds on a monotonic clock. */
export function now(): number {
  return performance.now()
}

/** Runs a command (argument array, no shell) and resolves when it exits; never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = now()
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: now() - t0 }))
  })
}

/** Like {@link run} but throws with the command's stderr tail when it does not exit 0. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')
    throw new Error(`${cmd} ${args.slice(0, 6).join(' ')}… exited ${r.code ?? r.signal}:\n${tail}`)
  }
  return r
}

/** Runs `tasks` with at most `parallel` at once (a fixed pool of runners taking the next task, like a worker). */
export async function runParallel<T>(
  tasks: readonly (() => Promise<T>)[],
  parallel: number,
): Promise<{ ms: number; results: T[] }> {
  const results = new Array<T>(tasks.length)
  let next = 0
  const t0 = now()
  const runner = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++
      results[i] = await (tasks[i] as () => Promise<T>)()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, tasks.length) }, runner))
  return { ms: now() - t0, results }
}

/** Resident set size of a process in bytes (Linux /proc), or null when it is gone. */
export function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

/** A long-running child (a `bullpen worker`) whose output is captured and whose start line can be awaited. */
export interface Background {
  child: ChildProcess
  pid: number
  output(): string
  /** Resolves when stdout+stderr match `re` (rejects if the process exits first or after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>
  /** Sends `signal` and waits for exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>
}

export function background(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Background {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  let out = ''
  let exited = false
  const exitP = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true
      r()
    }),
  )
  const waiters = new Set<() => void>()
  const onData = (d: string): void => {
    out += d
    if (out.length > 2_000_000) out = out.slice(-1_000_000)
    for (const w of waiters) w()
  }
  child.stdout?.setEncoding('utf8').on('data', onData)
  child.stderr?.setEncoding('utf8').on('data', onData)
  return {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (re.test(out)) done(undefined)
        }
        const t = setTimeout(
          () => done(new Error(`timed out waiting for ${re} from ${cmd}:\n${out.slice(-800)}`)),
          timeoutMs,
        )
        const done = (err: Error | undefined): void => {
          clearTimeout(t)
          waiters.delete(check)
          if (err) reject(err)
          else resolve()
        }
        waiters.add(check)
        void exitP.then(() =>
          done(re.test(out) ? undefined : new Error(`${cmd} exited:\n${out.slice(-800)}`)),
        )
        check()
      })
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000) {
      if (exited) return
      child.kill(signal)
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exitP
      clearTimeout(t)
    },
  }
}
