/**
 * The job processor: what a worker does with one job it took from the queue. The payload has already been
 * validated by the queue module (it never reaches here otherwise); the input is checked again on this node (the same
 * file that was probed when it was queued, or probed again when the job carries no probe) and only then handed to
 * ffmpeg.
 */
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { JobProgress, JobResult } from '../../shared/api'
import type { JobData } from '../../shared/spec'
import { InputRefusedError, UnrecoverableJobError, UserFacingError } from './errors'
import { probeFromJob, type TranscodeResult, transcodeFile } from './ffmpeg'
import { logger } from './logger'
import type { OutputLedger } from './outputLedger'
import { removeStaleTemps } from './pool/fileService'
import type { PoolMember } from './pool/member'
import type { EncodeRequest, InputRoute } from './pool/remoteJob'

/** How the job log says where a pooled job's input came from. */
const ROUTE_WORDS: Record<InputRoute, string> = {
  origin: 'read at',
  shared: 'shared with',
  stream: 'streamed from',
  fetch: 'fetched from',
}

/** How often a job's progress is written to Redis at most. */
export const PROGRESS_INTERVAL_MS = 250

export interface ProcessorContext {
  nodeId: string
  nodeName: string
  /** Kill an ffmpeg that makes no progress for this long (then the job is retried). */
  stallTimeoutMs?: number
  /** The pool: jobs of other origins are run through it (shared folder, or fetch → encode → upload). */
  pool?: PoolMember
  /** Outputs this node committed, so that a job run again after a lost completion makes no second output. */
  ledger?: OutputLedger
}

/** The slice of a Bull job the processor uses (so it can be driven by any queue front). */
export interface ProcessableJob {
  id: string | number
  data: JobData
  progress(value: JobProgress): Promise<unknown>
  log(line: string): Promise<unknown>
}

/**
 * Where this node can read the input. The origin (or a node that sees the very same file: same size and mtime)
 * reads it in place; any other node cannot yet — that error is retryable so another node gets the job.
 */
export async function localInputPath(data: JobData, nodeId: string): Promise<string> {
  const { path, size, mtimeMs } = data.input
  const name = basename(path)
  let st
  try {
    st = await stat(path)
  } catch {
    if (data.origin === nodeId) {
      throw new UnrecoverableJobError(
        `${name}: the input file is gone (${path}). Queue it again if it moved.`,
      )
    }
    throw new UserFacingError(`${name}: the input is on node ${data.origin} and not reachable from ${nodeId}`)
  }
  if (!st.isFile() || st.size !== size || Math.trunc(st.mtimeMs) !== Math.trunc(mtimeMs)) {
    if (data.origin === nodeId) {
      throw new UnrecoverableJobError(`${name}: the input file changed after it was queued. Queue it again.`)
    }
    throw new UserFacingError(
      `${name}: this node sees a different file at ${path} than node ${data.origin} queued`,
    )
  }
  return path
}

/** Builds the processor for one node. */
export function createProcessor(ctx: ProcessorContext) {
  const run = processJob(ctx)
  return async function process(job: ProcessableJob, signal: AbortSignal): Promise<JobResult> {
    try {
      return await run(job, signal)
    } catch (err) {
      // A refused input (damaged, no audio for mp3, …) will not get better by trying again.
      if (err instanceof InputRefusedError) throw new UnrecoverableJobError(err.message, { cause: err })
      throw err
    }
  }
}

function processJob(ctx: ProcessorContext) {
  return async function processOne(job: ProcessableJob, signal: AbortSignal): Promise<JobResult> {
    const data = job.data
    const jobId = String(job.id)
    let last = 0
    let pending: JobProgress | null = null
    const report = (p: JobProgress, force = false): void => {
      const now = Date.now()
      if (!force && now - last < PROGRESS_INTERVAL_MS) {
        pending = p
        return
      }
      last = now
      pending = null
      job
        .progress(p)
        .catch((err: unknown) => logger.debug({ jobId, err: String(err) }, 'progress not written'))
    }
    const encode = ({ inputPath, inputUrl, outputDir, signal: stop }: EncodeRequest) => {
      report({ stage: 'encode', percent: 0, fps: null, speed: null, etaSec: null }, true)
      return transcodeFile({
        jobId,
        inputPath,
        // Streamed from the origin (pool/relay.ts): ffmpeg reads the relay, the job's probe describes the input.
        ...(inputUrl !== undefined ? { inputUrl } : {}),
        outputDir,
        spec: data.spec,
        // Every route reads the very file that was probed when it was queued (same size and mtime, a download
        // checked against the origin's checksum, or a stream the origin serves only while size and mtime match):
        // that probe holds, no second ffprobe.
        ...(data.media ? { info: probeFromJob(data.media, inputUrl ?? inputPath, data.input.size) } : {}),
        // The job's cancel, and the streamed input's failure (the origin gone, the file changed there).
        signal: stop ? AbortSignal.any([signal, stop]) : signal,
        onProgress: (p) =>
          report({ stage: 'encode', percent: p.percent, fps: p.fps, speed: p.speed, etaSec: p.etaSec }),
        onLog: (line) => {
          job.log(line).catch(() => undefined)
        },
        ...(ctx.stallTimeoutMs !== undefined ? { stallTimeoutMs: ctx.stallTimeoutMs } : {}),
      })
    }
    if (ctx.pool && data.origin !== ctx.nodeId) {
      // Another node's job: read through a shared folder, or fetch the input and send the output back.
      const started = Date.now()
      const { result, route } = await ctx.pool.run(jobId, data, encode, {
        signal,
        onProgress: (p) => {
          if (p.stage !== 'encode')
            report({ stage: p.stage, percent: p.percent, fps: null, speed: null, etaSec: null })
        },
      })
      job
        .log(`processed on ${ctx.nodeName} (${ctx.nodeId}), input ${ROUTE_WORDS[route]} ${data.origin}`)
        .catch(() => undefined)
      return { ...result, elapsedMs: Date.now() - started, node: ctx.nodeName }
    }
    const inputPath = await localInputPath(data, ctx.nodeId)
    // A run of this job that died (kill -9, power cut) may have left its temp file beside the output.
    await removeStaleTemps(data.outputDir, jobId, inputPath)
    const before = await ctx.ledger?.earlier<TranscodeResult>(jobId, data.dedupeKey)
    if (before) {
      // This job's output was committed by an earlier run whose completion never reached Redis.
      job.log(`output already made by an earlier run: ${before.outputPath}`).catch(() => undefined)
      logger.info(
        { jobId, outputPath: before.outputPath },
        'job ran again; its output exists, not made twice',
      )
      return { ...before, node: ctx.nodeName }
    }
    const result = await encode({ inputPath, outputDir: data.outputDir })
    await ctx.ledger
      ?.remember(jobId, data.dedupeKey, result)
      .catch((err: unknown) => logger.warn({ jobId, err: String(err) }, 'output ledger not written'))
    if (pending) report({ ...(pending as JobProgress), percent: 100 }, true)
    return { ...result, node: ctx.nodeName }
  }
}
