/**
 * The one validation module for calls that reach the core from a UI: the Electron IPC adapter (src/main/ipc.ts)
 * and the WebSocket bridge (./server.ts) both pass every call through {@link callAppMethod}. Only method names from
 * `APP_METHOD_NAMES` are accepted and every parameter list is checked with zod before the core sees it, because a
 * renderer (or a browser tab) is less trusted than the main process.
 *
 * Plain Node: no electron here.
 */
import { z } from 'zod'
import { APP_METHOD_NAMES, JOB_STATES, type AppApi, type AppMethodName } from '../../../shared/api'
import { describeIssues, PRIORITIES, TranscodeSpecSchema } from '../../../shared/spec'

/** A method name or parameter list was refused; the message says which and why. */
export class BadRequestError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BadRequestError'
  }
}

/** Bull job ids: numbers or custom ids; printable, short, no spaces. */
const jobId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$/, 'invalid job id')
const priority = z.enum(PRIORITIES)
const scope = z.enum(['local', 'pool'])
const pathString = z.string().min(1).max(4096)

const AddFilesRequestSchema = z
  .object({
    paths: z.array(pathString).min(1, 'no files given').max(10_000, 'at most 10000 files at once'),
    preset: z.string().min(1).max(64).optional(),
    spec: TranscodeSpecSchema.optional(),
    priority,
    outputDir: z.string().max(4096).optional(),
  })
  .strict()

const SettingsPatchSchema = z
  .object({
    redisUrl: z.string().max(2048),
    concurrency: z.number().int().min(1).max(64),
    outputDir: z.string().max(4096),
    nodeName: z.string().max(64),
    notifications: z.boolean(),
    lastPreset: z.string().max(64),
    lastPriority: priority,
  })
  .partial()
  .strict()

/** Parameter lists, positional as in `AppApi`, one schema per method. */
export const METHOD_PARAMS = {
  addFiles: z.tuple([AddFilesRequestSchema]),
  listJobs: z.tuple([z.enum(JOB_STATES), z.number().int().min(0), z.number().int().min(1).max(1000)]),
  getJob: z.tuple([jobId]),
  getStats: z.tuple([]),
  setPriority: z.tuple([jobId, priority]),
  moveToTop: z.tuple([jobId]),
  cancel: z.tuple([jobId]),
  retry: z.tuple([jobId]),
  remove: z.tuple([jobId]),
  pause: z.tuple([scope]),
  resume: z.tuple([scope]),
  clean: z.tuple([z.number().int().min(0)]),
  getSettings: z.tuple([]),
  updateSettings: z.tuple([SettingsPatchSchema]),
  listNodes: z.tuple([]),
  listPresets: z.tuple([]),
  getConnection: z.tuple([]),
  revealOutput: z.tuple([jobId]),
  openOutput: z.tuple([jobId]),
  dashboardUrl: z.tuple([]),
} as const satisfies Record<AppMethodName, z.ZodType<unknown[]>>

const METHOD_SET: ReadonlySet<string> = new Set(APP_METHOD_NAMES)

/** True when `name` is one of the `AppApi` methods a UI may call. */
export function isAppMethodName(name: unknown): name is AppMethodName {
  return typeof name === 'string' && METHOD_SET.has(name)
}

/**
 * Checks a call from a UI: the method must be in `APP_METHOD_NAMES` and its parameters must match its schema.
 * Absent `params` count as an empty list. Throws {@link BadRequestError} naming the method and the fields.
 */
export function validateCall(method: unknown, params: unknown): { method: AppMethodName; params: unknown[] } {
  if (!isAppMethodName(method)) {
    throw new BadRequestError(
      `unknown method: ${typeof method === 'string' ? method.slice(0, 64) : typeof method}`,
    )
  }
  const parsed = METHOD_PARAMS[method].safeParse(params ?? [])
  if (!parsed.success)
    throw new BadRequestError(`bad parameters for ${method}: ${describeIssues(parsed.error)}`)
  return { method, params: parsed.data }
}

/** Validates a call (see {@link validateCall}) and runs it on `api`; resolves with the method's result. */
export async function callAppMethod(api: AppApi, method: unknown, params: unknown): Promise<unknown> {
  const call = validateCall(method, params)
  // The tuple was checked against this very method's schema above, so the spread matches its signature.
  const target = api as unknown as Record<
    AppMethodName,
    (this: AppApi, ...args: unknown[]) => Promise<unknown>
  >
  return await target[call.method].apply(api, call.params)
}
