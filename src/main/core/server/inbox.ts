/**
 * Keeps a serving node's inbox (the files browsers uploaded, `POST /api/upload`) from growing without end.
 *
 * An uploaded file is a copy: its original stays on the browser's machine. Once no job still needs it and it has
 * been there longer than the keep period (default 7 days), it is deleted. "Still needs" means: it is the input of a
 * job that is waiting, paused, delayed, active, or failed (a failed job can be retried, and Bull keeps the last 200).
 * Both the pool's queue and the node's own ("my jobs only") queue are looked at, whichever mode the node is in now.
 * The leftovers of uploads cut off by a crash (`.upload-*.part`, which a live upload keeps writing to) go after an
 * hour. Nothing else in the folder is touched: no folders, no links, no file outside it.
 */
import { lstat, readdir, realpath, unlink } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { logger as rootLogger } from '../logger'

export const DEFAULT_INBOX_KEEP_MS = 7 * 24 * 3600_000
/** An upload's temp file untouched this long belongs to an upload that ended without cleaning up (a crash). */
export const PART_MAX_IDLE_MS = 3600_000
export const INBOX_SWEEP_EVERY_MS = 3600_000

const PART = /^\.upload-[0-9a-f]{16}\.part$/

export interface InboxSweepOptions {
  dir: string
  /** Uploads older than this (by modification time) may go. */
  keepMs: number
  /** Absolute paths of the inputs of the jobs that still need theirs; only asked when something is old enough. */
  inUse: () => Promise<ReadonlySet<string>>
  now?: number
}

/** Deletes `path`; false when it could not be (gone meanwhile, no permission): the next pass tries again. */
function tryUnlink(path: string): Promise<boolean> {
  return unlink(path).then(
    () => true,
    () => false,
  )
}

/** One pass over the inbox. Returns the paths deleted. A missing inbox is an empty one. */
export async function sweepInbox(opts: InboxSweepOptions): Promise<string[]> {
  const dir = resolve(opts.dir)
  const now = opts.now ?? Date.now()
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const old: string[] = []
  const removed: string[] = []
  for (const name of names) {
    const path = join(dir, name)
    const st = await lstat(path).catch(() => null)
    if (!st?.isFile()) continue
    const age = now - st.mtimeMs
    if (PART.test(name)) {
      if (age > PART_MAX_IDLE_MS && (await tryUnlink(path))) removed.push(path)
    } else if (age > opts.keepMs) {
      old.push(path)
    }
  }
  if (old.length === 0) return removed
  const needed = await opts.inUse()
  // Jobs hold the real path of their input: the inbox may be reached through a link (a data folder moved to another
  // disk, macOS's /tmp), so a file counts as needed under either name.
  const realDir = await realpath(dir)
  for (const path of old) {
    if (needed.has(path) || needed.has(join(realDir, basename(path)))) continue
    if (await tryUnlink(path)) removed.push(path)
  }
  return removed
}

/**
 * Sweeps the inbox now and then every {@link INBOX_SWEEP_EVERY_MS} until stopped. A failed pass (Redis away, a
 * folder it cannot read) is logged and tried again at the next one; it never deletes on a guess.
 */
export function startInboxSweeper(opts: Omit<InboxSweepOptions, 'now'> & { everyMs?: number }): {
  stop: () => Promise<void>
} {
  const log = rootLogger.child({ module: 'inbox' })
  let running: Promise<void> = Promise.resolve()
  let stopped = false
  const pass = (): void => {
    running = sweepInbox(opts).then(
      (removed) => {
        if (removed.length > 0) log.info({ dir: opts.dir, removed }, 'old uploads no job needs removed')
      },
      (err: unknown) =>
        log.warn({ dir: opts.dir, err: String(err) }, 'inbox sweep failed; trying again later'),
    )
  }
  const first = setTimeout(pass, 0)
  const timer = setInterval(() => {
    if (!stopped) pass()
  }, opts.everyMs ?? INBOX_SWEEP_EVERY_MS)
  first.unref()
  timer.unref()
  return {
    async stop(): Promise<void> {
      stopped = true
      clearTimeout(first)
      clearInterval(timer)
      await running
    },
  }
}
