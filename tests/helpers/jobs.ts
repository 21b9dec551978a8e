/** A valid job payload for queue tests that never reach ffmpeg: its input path is all that differs. */
import { createHash } from 'node:crypto'
import { JOB_DATA_VERSION, type JobData } from '../../src/shared/spec'

export function fakeJobData(path: string): JobData {
  return {
    v: JOB_DATA_VERSION,
    input: { path, size: 1000, mtimeMs: 1_700_000_000_000 },
    outputDir: '/media/out',
    spec: { format: 'mp4', subtitles: 'keep' },
    priority: 'normal',
    origin: 'node-a',
    summary: { durationSec: 10, hasVideo: true, hasAudio: true, width: 640, height: 360 },
    dedupeKey: createHash('sha256').update(path).digest('hex').slice(0, 32),
    createdAt: Date.now(),
  }
}
