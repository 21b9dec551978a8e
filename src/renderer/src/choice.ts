/**
 * What the user chose to make of the next drop: a named preset, "Convert to…" a format, or "Resize W×H" — and how
 * urgent it is. Remembered between drops as `settings.lastPreset` (encoded as a short string) and
 * `settings.lastPriority`, with localStorage as the fallback when settings cannot be read or written.
 *
 * The format and priority lists are repeated here, typed against the shared ones, so that the renderer bundle does
 * not pull zod in through src/shared/spec.ts (its module-level schemas cannot be tree-shaken).
 */
import type { AddFilesRequest } from '../../shared/api'
import type { Format, Priority } from '../../shared/spec'

export const UI_FORMATS = [
  'mp4',
  'webm',
  'mkv',
  'mov',
  'gif',
  'mp3',
  'm4a',
] as const satisfies readonly Format[]
export const UI_PRIORITIES = ['high', 'normal', 'low'] as const satisfies readonly Priority[]
// Compile-time check that no shared format or priority is missing from the lists above.
const _allFormats: Exclude<Format, (typeof UI_FORMATS)[number]> extends never ? true : never = true
const _allPriorities: Exclude<Priority, (typeof UI_PRIORITIES)[number]> extends never ? true : never = true
void _allFormats
void _allPriorities

/** Formats without a picture (the shared AUDIO_FORMATS): nothing to resize. */
export const UI_AUDIO_FORMATS: readonly Format[] = ['mp3', 'm4a']

/** Same bounds as the shared ResizeSchema (2…7680 pixels). */
export const MIN_SIDE = 2
export const MAX_SIDE = 7680

export type Choice =
  | { kind: 'preset'; preset: string }
  | { kind: 'convert'; format: Format }
  | { kind: 'resize'; format: Format; width: number | null; height: number | null }

export const DEFAULT_CHOICE: Choice = { kind: 'preset', preset: '720p' }
export const DEFAULT_PRIORITY: Priority = 'normal'

const LS_PRESET = 'bullpen.lastPreset'
const LS_PRIORITY = 'bullpen.lastPriority'

export function isFormat(s: string): s is Format {
  return (UI_FORMATS as readonly string[]).includes(s)
}

export function isPriority(s: string): s is Priority {
  return (UI_PRIORITIES as readonly string[]).includes(s)
}

/** `720p` · `convert:webm` · `resize:mp4:1280x720` (either side may be empty). At most 64 characters. */
export function encodeChoice(c: Choice): string {
  switch (c.kind) {
    case 'preset':
      return c.preset
    case 'convert':
      return `convert:${c.format}`
    case 'resize':
      return `resize:${c.format}:${c.width ?? ''}x${c.height ?? ''}`
  }
}

/** The inverse of {@link encodeChoice}; anything unreadable gives the default. */
export function decodeChoice(s: string | null | undefined): Choice {
  if (!s) return DEFAULT_CHOICE
  const convert = /^convert:([a-z0-9]+)$/.exec(s)
  if (convert)
    return convert[1] && isFormat(convert[1]) ? { kind: 'convert', format: convert[1] } : DEFAULT_CHOICE
  const resize = /^resize:([a-z0-9]+):(\d{0,5})x(\d{0,5})$/.exec(s)
  if (resize) {
    const [, format = '', w = '', h = ''] = resize
    if (!isFormat(format)) return DEFAULT_CHOICE
    return { kind: 'resize', format, width: w === '' ? null : Number(w), height: h === '' ? null : Number(h) }
  }
  if (/^[a-z0-9][a-z0-9-]{0,31}$/.test(s)) return { kind: 'preset', preset: s }
  return DEFAULT_CHOICE
}

function validSide(n: number | null): boolean {
  return n === null || (Number.isInteger(n) && n >= MIN_SIDE && n <= MAX_SIDE)
}

/** Why the choice cannot be queued, or null when it can. */
export function choiceProblem(c: Choice): string | null {
  if (c.kind !== 'resize') return null
  if (UI_AUDIO_FORMATS.includes(c.format))
    return `${c.format} output has no picture to resize: use "Convert to…" for audio.`
  if (c.width === null && c.height === null) return 'Resize needs a width, a height or both.'
  if (!validSide(c.width) || !validSide(c.height))
    return `Width and height must be whole numbers from ${MIN_SIDE} to ${MAX_SIDE} pixels.`
  return null
}

/** The preset/spec part of an AddFilesRequest for this choice. */
export function requestFields(c: Choice): Pick<AddFilesRequest, 'preset' | 'spec'> {
  switch (c.kind) {
    case 'preset':
      return { preset: c.preset }
    case 'convert':
      return { spec: { format: c.format } }
    case 'resize': {
      const resize: { width?: number; height?: number } = {}
      if (c.width !== null) resize.width = c.width
      if (c.height !== null) resize.height = c.height
      return { spec: { format: c.format, resize } }
    }
  }
}

/** Short label, e.g. "720p", "webm", "mp4 1280×720". */
export function describeChoice(c: Choice): string {
  switch (c.kind) {
    case 'preset':
      return c.preset
    case 'convert':
      return c.format
    case 'resize':
      return `${c.format} ${c.width ?? 'auto'}×${c.height ?? 'auto'}`
  }
}

/** What localStorage remembers, or nothing when it is unavailable. */
export function loadLocalChoice(): { choice: Choice; priority: Priority } {
  let preset: string | null = null
  let priority: string | null = null
  try {
    preset = localStorage.getItem(LS_PRESET)
    priority = localStorage.getItem(LS_PRIORITY)
  } catch {
    // Storage can be disabled (private mode, sandboxed iframe): fall back to the defaults.
  }
  return {
    choice: decodeChoice(preset),
    priority: priority && isPriority(priority) ? priority : DEFAULT_PRIORITY,
  }
}

export function saveLocalChoice(choice: Choice, priority: Priority): void {
  try {
    localStorage.setItem(LS_PRESET, encodeChoice(choice))
    localStorage.setItem(LS_PRIORITY, priority)
  } catch {
    // Storage can be disabled or full: the settings on the core still remember the choice.
  }
}
