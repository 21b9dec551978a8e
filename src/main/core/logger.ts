import pino, { type Logger } from 'pino'

/**
 * The process-wide logger (pino, JSON lines on stderr). `BULLPEN_LOG_LEVEL` sets the level; the CLI sets it to
 * `warn` on a terminal so progress bars stay readable, `--verbose` brings it back to `info`/`debug`.
 */
export const logger: Logger = pino(
  { name: 'bullpen', level: process.env['BULLPEN_LOG_LEVEL'] ?? 'info' },
  pino.destination({ fd: 2, sync: false }),
)

export type { Logger }
