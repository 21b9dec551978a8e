import { describe, expect, it } from 'vitest'
import { isRelayUrl } from '../ffmpeg/run'
import { InputRelay } from './relay'

describe('relay URLs (the only URLs ffmpeg is ever given as an input)', () => {
  const secret = 'a'.repeat(32)

  it('accepts what a relay builds, for any file name', () => {
    for (const name of [
      'clip.mp4',
      "te[s]t_ video ' _ .flv",
      'ünï cødé.mkv',
      '-starts-with-dash.mov',
      'a:b.mp4',
    ]) {
      const relay = new InputRelay({
        target: { baseUrl: 'http://127.0.0.1:1', jobId: '1', token: 't', origin: 'o' },
        size: 1,
        name,
      })
      expect(relay.url, name).toMatch(/^http:\/\/127\.0\.0\.1:0\/[a-f0-9]{32}\//)
      expect(isRelayUrl(relay.url), name).toBe(true)
      expect(decodeURIComponent(relay.url.split('/').at(-1) ?? ''), name).toBe(name)
    }
  })

  it('refuses anything else: other hosts and schemes, no secret, queries, fragments, paths', () => {
    for (const url of [
      `http://localhost:8080/${secret}/a.mp4`,
      `http://127.0.0.2:8080/${secret}/a.mp4`,
      `http://[::1]:8080/${secret}/a.mp4`,
      `http://192.168.1.20:8080/${secret}/a.mp4`,
      `https://127.0.0.1:8080/${secret}/a.mp4`,
      `http://127.0.0.1/${secret}/a.mp4`,
      `http://user:pass@127.0.0.1:8080/${secret}/a.mp4`,
      `http://127.0.0.1:8080/${'a'.repeat(31)}/a.mp4`,
      `http://127.0.0.1:8080/${'A'.repeat(32)}/a.mp4`,
      `http://127.0.0.1:8080/${secret}/a.mp4?x=1`,
      `http://127.0.0.1:8080/${secret}/a.mp4#x`,
      `http://127.0.0.1:8080/${secret}/dir/a.mp4`,
      `http://127.0.0.1:8080/${secret}/`,
      `http://127.0.0.1:8080/jobs/1/input`,
      `file:/tmp/${secret}/a.mp4`,
      `/tmp/a.mp4`,
      `concat:http://127.0.0.1:8080/${secret}/a.mp4`,
    ]) {
      expect(isRelayUrl(url), url).toBe(false)
    }
  })
})
