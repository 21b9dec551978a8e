/**
 * How a worker gets at a job's files: the origin reads in place; a node that sees the file through a shared folder
 * both declare reads it there (checked by size and mtime); any other node streams the input from the origin's file
 * service into ffmpeg as it arrives (through a loopback relay, relay.ts) — or, for a job queued without its probe,
 * downloads it into its scratch folder first — encodes into its scratch folder and sends the output back. The
 * scratch folder of a job is removed and the relay closed on every path, and the whole scratch folder is emptied
 * when a worker starts (a killed worker leaves no debris).
 */
import { mkdir, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { JobData } from '../../../shared/spec'
import { logger as rootLogger, type Logger } from '../logger'
import type { SharedFolder } from './config'
import { OriginUnavailableError } from './errors'
import { removeStaleTemps } from './fileService'
import type { NodeRecord } from './registry'
import { isFolder, mapSharedDir, mapSharedPath, sameFile } from './sharedFolders'
import { JOB_ID_PATTERN } from './tokens'
import { startRelay } from './relay'
import { fetchInput, uploadOutput, type TransferOptions, type TransferTarget } from './transfer'

/** How long a worker waits for a job's token to appear (the origin writes it right after queueing). */
export const TOKEN_WAIT_MS = 3000
/** How long a job waits before it looks again for an origin that is away. */
export const ORIGIN_RETRY_MS = 15_000

/**
 * Where a worker reads the input of one job: in place at the origin, through a shared folder, streamed from the
 * origin into ffmpeg, or downloaded from it first.
 */
export type InputRoute = 'origin' | 'shared' | 'stream' | 'fetch'

export interface PoolWorkerContext {
  nodeId: string
  sharedFolders: readonly SharedFolder[]
  /** A live node by id (the registry). */
  getNode(id: string): Promise<NodeRecord | null>
  /** The job's token (the token store). */
  getToken(jobId: string): Promise<string | null>
  /** This node's scratch folder (inside its data folder). */
  scratchDir: string
  /** This machine's host name as the registry shows it (default `os.hostname()`). */
  host?: string
  logger?: Logger
  /** Transfer tuning (tests). */
  transfer?: Pick<TransferOptions, 'maxFailures' | 'retryDelayMs' | 'idleTimeoutMs'>
  /**
   * Stream the input of a job that carries its probe into ffmpeg instead of downloading it first (default true;
   * `BULLPEN_POOL_STREAM=0` turns it off for a node).
   */
  stream?: boolean
}

/** What the encoder gets, and what it must return. */
export interface EncodeRequest {
  /** The input file; when `inputUrl` is set, a name in the scratch folder that only names the output. */
  inputPath: string
  /** The loopback URL of the input relay ffmpeg must read (streamed route; the job's `media` is the probe). */
  inputUrl?: string
  outputDir: string
  /** Aborted (with the transfer's error as reason) when the streamed input fails: stop ffmpeg. */
  signal?: AbortSignal
}

export interface PooledProgress {
  stage: 'download' | 'encode' | 'upload'
  /** 0–100, null when unknown. */
  percent: number | null
}

export interface PooledResult<R extends { outputPath: string }> {
  result: R
  route: InputRoute
  /** True when the origin already had this job's output (a repeated delivery); `result.outputPath` is that one. */
  duplicate: boolean
}

/** True when a file service URL names a loopback address (reachable from its own machine only). */
export function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
    return h === 'localhost' || h === '::1' || /^127\./.test(h)
  } catch {
    return false
  }
}

/** Empties this node's scratch folder (at worker start: a killed worker may have left partial files). */
export async function cleanScratch(scratchDir: string): Promise<void> {
  await rm(scratchDir, { recursive: true, force: true })
  await mkdir(scratchDir, { recursive: true })
}

/** The file name of an origin's path (POSIX or Windows), safe as a name in the scratch folder. */
export function baseName(p: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const name = (p.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f]/g, '')
  return name === '' || name === '.' || name === '..' ? 'input' : name
}

/**
 * Runs one job on this node with `encode` (which writes the output into `outputDir` and returns where): in place
 * when it can, else fetch → encode → upload.
 * @throws OriginUnavailableError when the origin is away (the job should wait, not fail).
 */
export async function runPooled<R extends { outputPath: string }>(
  jobId: string,
  data: JobData,
  ctx: PoolWorkerContext,
  encode: (req: EncodeRequest) => Promise<R>,
  opts: { signal?: AbortSignal; onProgress?: (p: PooledProgress) => void } = {},
): Promise<PooledResult<R>> {
  const log = (ctx.logger ?? rootLogger).child({ jobId, origin: data.origin })
  if (data.origin === ctx.nodeId) {
    return {
      result: await encode({ inputPath: data.input.path, outputDir: data.outputDir }),
      route: 'origin',
      duplicate: false,
    }
  }
  const origin = await ctx.getNode(data.origin)
  if (!origin) {
    throw new OriginUnavailableError(
      `waiting for node ${data.origin}, where the input of job ${jobId} is: it is not running`,
      data.origin,
      ORIGIN_RETRY_MS,
    )
  }

  // Shared storage: the same file, seen through a folder both nodes declare.
  const sharedIn = mapSharedPath(data.input.path, origin.sharedFolders, ctx.sharedFolders)
  const inputShared = sharedIn !== null && (await sameFile(sharedIn, data.input.size, data.input.mtimeMs))
  const sharedOutDir = mapSharedDir(data.outputDir, origin.sharedFolders, ctx.sharedFolders)
  const outputShared = sharedOutDir !== null && (await isFolder(sharedOutDir))
  if (inputShared && outputShared) {
    log.info({ input: sharedIn }, 'reading the input through a shared folder')
    await removeStaleTemps(sharedOutDir, jobId, data.input.path)
    const result = await encode({ inputPath: sharedIn, outputDir: sharedOutDir })
    return { result, route: 'shared', duplicate: false }
  }

  if (!origin.fileServiceUrl) {
    throw new OriginUnavailableError(
      `waiting for node ${data.origin} to serve the input of job ${jobId} (it runs no file service)`,
      data.origin,
      ORIGIN_RETRY_MS,
    )
  }
  if (isLoopbackUrl(origin.fileServiceUrl) && origin.host !== (ctx.host ?? hostname())) {
    // Its file service listens on its own loopback only: from this machine that address is someone else.
    throw new OriginUnavailableError(
      `waiting for node ${origin.name} (${data.origin}): its file service answers only on its own machine ` +
        `(${origin.fileServiceUrl}); give it --bind 0.0.0.0 --advertise-host <its LAN address> (see docs/pooling.md)`,
      data.origin,
      60_000,
    )
  }
  let token = await ctx.getToken(jobId)
  for (let waited = 0; !token && waited < TOKEN_WAIT_MS; waited += 250) {
    await new Promise((r) => setTimeout(r, 250))
    token = await ctx.getToken(jobId)
  }
  if (!token) {
    throw new OriginUnavailableError(
      `waiting for node ${data.origin} to authorise job ${jobId} (no transfer token yet)`,
      data.origin,
      5000,
    )
  }
  const target = { baseUrl: origin.fileServiceUrl, jobId, token, origin: data.origin }
  const scratch = join(ctx.scratchDir, JOB_ID_PATTERN.test(jobId) ? jobId.replace(/:/g, '_') : 'job')
  await rm(scratch, { recursive: true, force: true })
  await mkdir(join(scratch, 'in'), { recursive: true })
  await mkdir(join(scratch, 'out'), { recursive: true })
  const outDir = outputShared ? sharedOutDir : join(scratch, 'out')
  try {
    if (outputShared) await removeStaleTemps(sharedOutDir, jobId, data.input.path)
    let result: R
    let route: InputRoute
    if (inputShared) {
      route = 'shared'
      result = await encode({ inputPath: sharedIn, outputDir: outDir })
    } else if (data.media && ctx.stream !== false) {
      route = 'stream'
      const name = join(scratch, 'in', baseName(data.input.path))
      result = await encodeStreamed(target, data, name, outDir, ctx, encode, {
        log,
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
    } else {
      // A job queued without its probe (an older node): download it whole, then encode the file.
      route = 'fetch'
      const t0 = Date.now()
      const got = await fetchInput(target, join(scratch, 'in', baseName(data.input.path)), data.input.size, {
        ...ctx.transfer,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (done, total) => opts.onProgress?.({ stage: 'download', percent: (100 * done) / total }),
      })
      log.info({ bytes: data.input.size, ms: Date.now() - t0 }, 'input fetched from the origin')
      result = await encode({ inputPath: got.path, outputDir: outDir })
    }
    if (outputShared) return { result, route, duplicate: false }
    const up = await uploadOutput(target, result.outputPath, {
      ...ctx.transfer,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onProgress: (done, total) => opts.onProgress?.({ stage: 'upload', percent: (100 * done) / total }),
    })
    log.info({ path: up.path, duplicate: up.duplicate }, 'output delivered to the origin')
    return { result: { ...result, outputPath: up.path }, route, duplicate: up.duplicate }
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined)
  }
}

/**
 * The streamed route: a relay for this job (relay.ts), ffmpeg reading its URL, and the relay's failure — the origin
 * gone, the input changed there — taking precedence over what ffmpeg makes of a cut input. The relay is closed (its
 * port freed, the origin's connections dropped) on every path.
 */
async function encodeStreamed<R extends { outputPath: string }>(
  target: TransferTarget,
  data: JobData,
  inputName: string,
  outputDir: string,
  ctx: PoolWorkerContext,
  encode: (req: EncodeRequest) => Promise<R>,
  opts: { log: Logger; signal?: AbortSignal },
): Promise<R> {
  const stop = new AbortController()
  const t0 = Date.now()
  const relay = await startRelay({
    target,
    size: data.input.size,
    name: baseName(data.input.path),
    ...ctx.transfer,
    signal: opts.signal,
    onFail: (err) => stop.abort(err),
    logger: opts.log,
  })
  try {
    opts.log.info({ bytes: data.input.size }, 'streaming the input from the origin')
    let result: R
    try {
      result = await encode({ inputPath: inputName, inputUrl: relay.url, outputDir, signal: stop.signal })
    } catch (err) {
      // ffmpeg saw a cut input; the reason is the relay's (unless the job itself was cancelled).
      throw relay.failure && !opts.signal?.aborted ? relay.failure : err
    }
    opts.log.info(
      { ...relay.stats, size: data.input.size, ms: Date.now() - t0 },
      'input streamed from the origin',
    )
    return result
  } finally {
    await relay.close()
  }
}
