/** Test data shared by the shell's unit tests: a complete JobView with the fields a test cares about. */
import type { JobView } from '../shared/api'

export function jobView(over: Partial<JobView> & { id: string }): JobView {
  return {
    state: 'waiting',
    name: `clip-${over.id}.mp4`,
    inputPath: `/videos/clip-${over.id}.mp4`,
    outputDir: '/videos',
    spec: { format: 'mp4', subtitles: 'keep', preset: '720p' },
    label: '720p',
    priority: 'normal',
    origin: 'me',
    node: null,
    summary: { durationSec: 10, hasVideo: true, hasAudio: true, width: 1280, height: 720 },
    progress: null,
    result: null,
    failedReason: null,
    cancelled: false,
    attemptsMade: 0,
    attempts: 3,
    createdAt: 0,
    startedAt: null,
    finishedAt: null,
    batch: null,
    ...over,
  }
}
