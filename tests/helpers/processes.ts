/**
 * Bullpen CLI processes for multi-process tests: each runs `bullpen <args>` from the sources in its own process
 * group (so a kill takes its ffmpeg too), with its output kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join, resolve } from 'node:path'
import { waitFor } from './redis'

export const repoRoot = resolve(__dirname, '..', '..')

export interface Proc {
  name: string
  child: ChildProcess
  out: string[]
  err: string[]
  exited: Promise<number | null>
}

/** Every process started by {@link startBullpen} in this test file. */
export const procs: Proc[] = []

export function startBullpen(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'index.ts'), ...args],
    {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BULLPEN_LOG_LEVEL: 'info', ...env },
    },
  )
  const p: Proc = {
    name,
    child,
    out: [],
    err: [],
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
  }
  child.stdout?.on('data', (d: Buffer) => p.out.push(...d.toString().split('\n').filter(Boolean)))
  child.stderr?.on('data', (d: Buffer) => p.err.push(...d.toString().split('\n').filter(Boolean)))
  procs.push(p)
  return p
}

/** Sends `signal` to the process and everything it started. */
export function killGroup(p: Proc, signal: NodeJS.Signals): void {
  try {
    if (p.child.pid) process.kill(-p.child.pid, signal)
  } catch {
    // already gone
  }
}

/** Kills every process this file started and waits for them. */
export async function killAll(): Promise<void> {
  for (const p of procs) killGroup(p, 'SIGKILL')
  await Promise.all(procs.map((p) => p.exited))
}

/** The latest output of a process, for a failure message. */
export function tail(p: Proc): string {
  return `--- ${p.name} stdout:\n${p.out.slice(-20).join('\n')}\n--- ${p.name} stderr:\n${p.err.slice(-30).join('\n')}`
}

/** {@link waitFor} with a failure message built when it fails (e.g. the processes' latest output). */
export async function until(
  fn: () => boolean | Promise<boolean>,
  what: () => string,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  try {
    await waitFor(fn, 'condition', timeoutMs, everyMs)
  } catch {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
  }
}
