/**
 * Shared folders: a folder several nodes see under their own paths (a NAS mounted at `/mnt/media` on one node and
 * `/Volumes/media` on another), known to all by one name. A worker reads an input in place only when it is the
 * origin, or when the path lies under a shared folder that both nodes declare — and the file it finds there has the
 * size and modification time the origin recorded. Otherwise it fetches the file from the origin.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { SharedFolder } from './config'

/** Modification times may lose precision across SMB/NFS/FAT: this much difference still counts as the same. */
export const MTIME_TOLERANCE_MS = 1000

function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\')
}

/** The segments of `p` below `root` (empty for `root` itself), or null when `p` is not inside it (a string check). */
export function relativeSegments(root: string, p: string): string[] | null {
  const win = isWindowsPath(root)
  const sep = win ? /[\\/]/ : /\//
  const norm = (s: string) => s.split(sep).filter((x) => x !== '')
  const r = norm(root)
  const q = norm(p)
  if (q.length < r.length) return null
  const same = (a: string, b: string) => (win ? a.toLowerCase() === b.toLowerCase() : a === b)
  for (let i = 0; i < r.length; i++) if (!same(r[i] as string, q[i] as string)) return null
  const rest = q.slice(r.length)
  if (rest.some((s) => s === '.' || s === '..')) return null
  return rest
}

/**
 * Maps a path of the origin node to this node's view of it through a shared folder both declare (matched by name).
 * Returns null when no shared folder covers it.
 */
export function mapSharedPath(
  originPath: string,
  originFolders: readonly SharedFolder[],
  selfFolders: readonly SharedFolder[],
): string | null {
  for (const of of originFolders) {
    const rest = relativeSegments(of.path, originPath)
    if (!rest || rest.length === 0) continue
    const mine = selfFolders.find((f) => f.name === of.name)
    if (!mine) continue
    return join(mine.path, ...rest)
  }
  return null
}

/** The same directory through a shared folder (for an output folder), or null. */
export function mapSharedDir(
  originDir: string,
  originFolders: readonly SharedFolder[],
  selfFolders: readonly SharedFolder[],
): string | null {
  for (const of of originFolders) {
    const mine = selfFolders.find((f) => f.name === of.name)
    if (!mine) continue
    const rest = relativeSegments(of.path, originDir)
    if (rest) return join(mine.path, ...rest)
  }
  return null
}

/** True when `p` is a regular file with this size and (within {@link MTIME_TOLERANCE_MS}) this mtime. */
export async function sameFile(p: string, size: number, mtimeMs: number): Promise<boolean> {
  try {
    const st = await stat(p)
    return st.isFile() && st.size === size && Math.abs(st.mtimeMs - mtimeMs) <= MTIME_TOLERANCE_MS
  } catch {
    return false
  }
}

/** True when `p` is an existing folder. */
export async function isFolder(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}
