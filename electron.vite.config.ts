import { resolve } from 'node:path'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'electron-vite'

const shared = { '@shared': resolve(__dirname, 'src/shared') }

export default defineConfig({
  main: {
    resolve: { alias: shared },
    build: {
      externalizeDeps: { exclude: ['zod'] },
      // One build for the Electron main process and for the headless CLI: both are plain Node
      // bundles over the same core, and the CLI never imports `electron`.
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'src/main/index.ts'),
          cli: resolve(__dirname, 'src/cli/index.ts'),
        },
      },
    },
  },
  preload: {
    resolve: { alias: shared },
  },
  renderer: {
    resolve: { alias: shared },
    plugins: [react()],
    // electron-vite leaves the renderer unminified by default; `bullpen serve` sends it over the network.
    build: { minify: true },
  },
})
