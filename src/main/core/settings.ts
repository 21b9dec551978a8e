/**
 * Settings of one node, kept as JSON in its data folder and validated on every read: a hand-edited or damaged
 * file falls back to the defaults for the fields that are wrong, and says so in the log.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir, hostname, platform } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import type { Settings } from '../../shared/api'
import { PRIORITIES } from '../../shared/spec'
import { UserFacingError } from './errors'
import { logger } from './logger'

/** Default concurrency: measured in bench/RESULTS.md (figure 2, mixed presets on a 2-core machine). */
export const DEFAULT_CONCURRENCY = 2
export const MAX_CONCURRENCY = 32

export const SettingsSchema = z.object({
  redisUrl: z
    .string()
    .max(2048)
    .refine((u) => u === '' || /^rediss?:\/\//.test(u), 'must start with redis:// or rediss://'),
  concurrency: z.number().int().min(1).max(MAX_CONCURRENCY),
  outputDir: z.string().max(4096),
  nodeName: z
    .string()
    .max(64)
    // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
    .regex(/^[^\u0000-\u001f]*$/, 'no control characters'),
  notifications: z.boolean(),
  lastPreset: z.string().max(64),
  lastPriority: z.enum(PRIORITIES),
})

export function defaultSettings(): Settings {
  return {
    redisUrl: '',
    concurrency: DEFAULT_CONCURRENCY,
    outputDir: '',
    nodeName: hostname(),
    notifications: true,
    lastPreset: '720p',
    lastPriority: 'normal',
  }
}

/**
 * The data folder: `BULLPEN_DATA_DIR`, else the platform's usual place for application data
 * (the Electron shell passes `app.getPath('userData')` instead).
 */
export function defaultDataDir(): string {
  const env = process.env['BULLPEN_DATA_DIR']
  if (env) return env
  const home = homedir()
  switch (platform()) {
    case 'darwin':
      return join(home, 'Library', 'Application Support', 'Bullpen')
    case 'win32':
      return join(process.env['APPDATA'] ?? join(home, 'AppData', 'Roaming'), 'Bullpen')
    default:
      return join(process.env['XDG_CONFIG_HOME'] ?? join(home, '.config'), 'bullpen')
  }
}

/** Reads and writes settings.json in a data folder. */
export class SettingsStore {
  readonly file: string
  private current: Settings

  constructor(readonly dataDir: string) {
    try {
      mkdirSync(dataDir, { recursive: true })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way' : (code ?? String(err))
      throw new UserFacingError(
        `The data folder ${dataDir} cannot be used (${why}). Choose another with --data-dir or BULLPEN_DATA_DIR.`,
      )
    }
    this.file = join(dataDir, 'settings.json')
    this.current = this.load()
  }

  get(): Settings {
    return { ...this.current }
  }

  /** Validates and saves the changed fields; throws a readable error for an invalid value. */
  update(patch: Partial<Settings>): Settings {
    const next = SettingsSchema.safeParse({ ...this.current, ...patch })
    if (!next.success) {
      throw new Error(
        `Invalid settings: ${next.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      )
    }
    this.current = next.data
    const tmp = `${this.file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(this.current, null, 2) + '\n')
    renameSync(tmp, this.file)
    return this.get()
  }

  private load(): Settings {
    const defaults = defaultSettings()
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(this.file, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        logger.warn({ file: this.file, err: String(err) }, 'settings file unreadable; using defaults')
      }
      return defaults
    }
    const merged: Record<string, unknown> = { ...defaults }
    if (raw && typeof raw === 'object') {
      for (const [key, value] of Object.entries(raw)) {
        const field = SettingsSchema.shape[key as keyof Settings]
        if (!field) continue
        if (field.safeParse(value).success) merged[key] = value
        else logger.warn({ file: this.file, key }, 'invalid setting ignored')
      }
    }
    return SettingsSchema.parse(merged)
  }
}

/**
 * This node's id: stable for a data folder (jobs remember their origin across restarts), unique between folders.
 */
export function nodeIdFor(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'node-id')
  try {
    const id = readFileSync(file, 'utf8').trim()
    if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) return id
  } catch {
    // first start: make one below
  }
  const base = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40)
  const id = `${base || 'node'}-${randomBytes(4).toString('hex')}`
  writeFileSync(file, id + '\n', { flag: 'w' })
  return id
}
