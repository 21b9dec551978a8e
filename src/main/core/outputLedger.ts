/**
 * What this node has delivered, kept on its own disk: one small record per job whose output it committed.
 *
 * Why: a job can run again after its output was already committed — its worker finished the encode just as Redis
 * went away, so the completion never reached Redis (or AOF lost its last second), and the stalled-job check handed
 * the job out again. Without a record the second run would make a second output (`clip (1).mp4`). The record lives
 * outside Redis precisely because Redis is what lost the news.
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { logger } from './logger'

/** Records older than this are pruned when a node starts. */
export const LEDGER_KEEP_MS = 14 * 24 * 3600_000

const RecordSchema = z.object({
  jobId: z.string(),
  dedupeKey: z.string(),
  outputPath: z.string(),
  size: z.number().int().min(0),
  result: z.record(z.string(), z.unknown()),
})

export class OutputLedger {
  constructor(readonly dir: string) {}

  private file(jobId: string, dedupeKey: string): string {
    return join(this.dir, `${jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}-${dedupeKey}.json`)
  }

  /**
   * The result of an earlier run of this very job (same id, same input and spec) whose output is still there,
   * unchanged in size; null otherwise.
   */
  async earlier<R extends { outputPath: string; size: number }>(
    jobId: string,
    dedupeKey: string,
  ): Promise<R | null> {
    let raw: string
    try {
      raw = await readFile(this.file(jobId, dedupeKey), 'utf8')
    } catch {
      return null
    }
    const rec = RecordSchema.safeParse(JSON.parse(raw) as unknown)
    if (!rec.success || rec.data.jobId !== jobId || rec.data.dedupeKey !== dedupeKey) return null
    const st = await stat(rec.data.outputPath).catch(() => null)
    if (!st?.isFile() || st.size !== rec.data.size) return null
    return rec.data.result as R
  }

  /** Remembers a committed output (written atomically: temp file, then rename). */
  async remember(
    jobId: string,
    dedupeKey: string,
    result: { outputPath: string; size: number },
  ): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const file = this.file(jobId, dedupeKey)
    const tmp = `${file}.${process.pid}.tmp`
    const rec = { jobId, dedupeKey, outputPath: result.outputPath, size: result.size, result }
    await writeFile(tmp, JSON.stringify(rec))
    await rename(tmp, file)
  }

  /** Deletes records older than `keepMs`. */
  async prune(keepMs = LEDGER_KEEP_MS, now = Date.now()): Promise<number> {
    let n = 0
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const f = join(this.dir, name)
      const st = await stat(f).catch(() => null)
      if (st && now - st.mtimeMs > keepMs) {
        await rm(f, { force: true })
        n++
      }
    }
    if (n > 0) logger.debug({ dir: this.dir, n }, 'output ledger pruned')
    return n
  }
}
