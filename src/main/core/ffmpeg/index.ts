/** The FFmpeg layer of the core: find, probe, build arguments, run, verify, commit. */
export {
  findFfmpeg,
  useFfmpeg,
  ffmpegPaths,
  checkFfmpeg,
  listEncoders,
  listFilters,
  detectCapabilities,
  warmFfmpeg,
  findOnPath,
  unpackedAsarPath,
  type BinarySource,
  type FfmpegLocateOptions,
  type FfmpegPaths,
  type FfmpegCheck,
  type FfmpegCapabilities,
} from './locate'
export {
  probeInput,
  prefetchProbes,
  checkInput,
  summarize,
  parseProbe,
  keepProbe,
  probeFromJob,
  type MediaInfo,
  type VideoInfo,
  type AudioInfo,
  type SubtitleInfo,
} from './probe'
export { buildFfmpegArgs, targetSize, GIF_MAX_FPS, type FfmpegPlan, type SubtitleOutcome } from './args'
export {
  createProgressTracker,
  createThrottle,
  parseTimestamp,
  type ProgressSnapshot,
  type ProgressTracker,
  type Throttle,
} from './progress'
export {
  runFfmpeg,
  abortJob,
  abortAll,
  runningJobs,
  DEFAULT_STALL_TIMEOUT_MS,
  type RunOptions,
  type RunResult,
} from './run'
export { planOutput, tempPathFor, commitOutput } from './output'
export { verifyOutput, expectationFor, durationTolerance, type OutputExpectation } from './verify'
export { transcodeFile, type TranscodeOptions, type TranscodeResult } from './transcode'
