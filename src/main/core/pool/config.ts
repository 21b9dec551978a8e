/**
 * Pool settings of one node, kept in `pool.json` in its data folder (beside settings.json) and validated on read:
 * how this node takes part in the pool, where its file service listens and what it advertises, and which folders it
 * shares with other nodes.
 */
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { isSafeAbsolutePath } from '../../../shared/spec'
import { logger } from '../logger'

/** `pool`: take anyone's jobs and share mine. `own`: "my jobs only" — take only jobs this node queued. */
export const POOL_MODES = ['pool', 'own'] as const
export type PoolMode = (typeof POOL_MODES)[number]

/**
 * Default TCP port of the file service: 0, any free one (it is advertised in the registry, so several nodes on one
 * machine never collide). Set a fixed port in pool.json when a firewall must let it through.
 */
export const DEFAULT_FILE_SERVICE_PORT = 0

/** A folder several nodes see, each under its own path, known to all by the same `name`. */
export const SharedFolderSchema = z
  .object({
    /** The name every node uses for this folder, e.g. `media`. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-"'),
    /** Where the folder is on this node, e.g. `/mnt/media` or `/Volumes/media`. */
    path: z.string().refine(isSafeAbsolutePath, 'must be an absolute, normalised path'),
  })
  .strict()
export type SharedFolder = z.infer<typeof SharedFolderSchema>

const hostSchema = z
  .string()
  .max(253)
  .regex(/^[A-Za-z0-9.:_\-[\]%]*$/, 'a host name or IP address')

export const PoolConfigSchema = z
  .object({
    mode: z.enum(POOL_MODES),
    /** Address the file service binds to. Default 127.0.0.1: only this machine; `0.0.0.0` for the LAN. */
    bind: hostSchema.min(1),
    port: z.number().int().min(0).max(65535),
    /** Host other nodes use to reach the file service; empty: the bind address (or this host's name for 0.0.0.0). */
    advertiseHost: hostSchema,
    sharedFolders: z.array(SharedFolderSchema).max(32),
  })
  .strict()
export type PoolConfig = z.infer<typeof PoolConfigSchema>

export function defaultPoolConfig(): PoolConfig {
  return {
    mode: 'pool',
    bind: '127.0.0.1',
    port: DEFAULT_FILE_SERVICE_PORT,
    advertiseHost: '',
    sharedFolders: [],
  }
}

/** Reads `pool.json` from a data folder: missing means defaults, invalid fields fall back with a warning. */
export function loadPoolConfig(dataDir: string): PoolConfig {
  const file = join(dataDir, 'pool.json')
  const defaults = defaultPoolConfig()
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn({ file, err: String(err) }, 'pool.json unreadable; using defaults')
    }
    return defaults
  }
  const merged: Record<string, unknown> = { ...defaults }
  if (raw && typeof raw === 'object') {
    for (const [key, value] of Object.entries(raw)) {
      const field = PoolConfigSchema.shape[key as keyof PoolConfig]
      if (!field) continue
      if (field.safeParse(value).success) merged[key] = value
      else logger.warn({ file, key }, 'invalid pool setting ignored')
    }
  }
  return PoolConfigSchema.parse(merged)
}

/** Validates and writes `pool.json` (atomically). */
export function savePoolConfig(dataDir: string, config: PoolConfig): PoolConfig {
  const valid = PoolConfigSchema.parse(config)
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'pool.json')
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(valid, null, 2) + '\n')
  renameSync(tmp, file)
  return valid
}
