import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

const alias = { '@shared': resolve(__dirname, 'src/shared') }

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          // A few unit tests run real ffmpeg/ffprobe (-version, -encoders): give them room on a loaded 2-core machine.
          testTimeout: 30_000,
          include: ['src/**/*.test.ts'],
          exclude: ['src/renderer/**'],
          environment: 'node',
          globalSetup: ['tests/setup/redis.ts'],
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'renderer',
          include: ['src/renderer/**/*.test.{ts,tsx}'],
          environment: 'jsdom',
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['tests/setup/redis.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Real ffmpeg on two cores: files run one at a time so encodes do not starve each other.
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['tests/setup/redis.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
