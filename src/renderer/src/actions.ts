/** What the adder and the drop target do with files: upload/resolve them through the bridge, then queue them. */
import type { AddOutcome } from '../../shared/api'
import { choiceProblem, describeChoice, requestFields } from './choice'
import { clearUploads, notify, runAction, setUpload, storeBridge, useBullpen } from './store'

function baseName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p
}

/** One readable line about what `addFiles` did, e.g. "Queued 2 files (720p, high priority). 1 already queued." */
export function summarizeOutcomes(
  outcomes: AddOutcome[],
  as: string,
): { kind: 'info' | 'error'; text: string } {
  const queued = outcomes.filter((o) => o.id !== null && !o.duplicate).length
  const duplicates = outcomes.filter((o) => o.duplicate).length
  const refused = outcomes.filter((o) => o.error !== null)
  const parts: string[] = []
  if (queued > 0) parts.push(`Queued ${queued} file${queued === 1 ? '' : 's'} (${as})`)
  if (duplicates > 0) parts.push(`${duplicates} already queued`)
  // Reasons are sentences already, mostly ending in a full stop: none is added after them.
  const sentence = (t: string): string => t.replace(/[.!?]?$/, (end) => end || '.')
  for (const o of refused.slice(0, 3)) parts.push(`${baseName(o.path)} refused: ${o.error ?? ''}`)
  if (refused.length > 3) parts.push(`and ${refused.length - 3} more refused`)
  if (parts.length === 0) parts.push('Nothing was queued')
  return { kind: refused.length > 0 ? 'error' : 'info', text: parts.map(sentence).join(' ') }
}

/** Queues paths (from the native dialog, or resolved from files) with the current preset and priority. */
export async function queuePaths(paths: string[]): Promise<AddOutcome[] | undefined> {
  if (paths.length === 0) return []
  const { choice, priority, settings } = useBullpen.getState()
  const problem = choiceProblem(choice)
  if (problem) {
    notify('error', problem)
    return undefined
  }
  const outcomes = await runAction('Could not queue the files', (b) =>
    b.addFiles({
      paths,
      priority,
      ...requestFields(choice),
      ...(settings?.outputDir ? { outputDir: settings.outputDir } : {}),
    }),
  )
  if (outcomes) {
    const summary = summarizeOutcomes(outcomes, `${describeChoice(choice)}, ${priority} priority`)
    notify(summary.kind, summary.text)
  }
  return outcomes
}

/** Dropped or picked files: their paths (uploaded first in a browser), then queued. */
export async function queueFiles(files: File[]): Promise<AddOutcome[] | undefined> {
  if (files.length === 0) return []
  const problem = choiceProblem(useBullpen.getState().choice)
  if (problem) {
    notify('error', problem)
    return undefined
  }
  const paths = await runAction('Could not read the files', (b) =>
    b.pathsForFiles(files, (name, sent, total) => setUpload(name, sent, total)),
  )
  clearUploads()
  if (!paths) return undefined
  return queuePaths(paths)
}

/** "Add files…": the native dialog in Electron; `null` means "use a file input" (browser). */
export async function pickFiles(): Promise<string[] | null> {
  return storeBridge().pickFiles()
}
