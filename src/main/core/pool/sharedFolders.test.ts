import { describe, expect, it } from 'vitest'
import { mapSharedDir, mapSharedPath, relativeSegments } from './sharedFolders'

describe('shared folders', () => {
  const origin = [{ name: 'media', path: '/mnt/media' }]
  const self = [{ name: 'media', path: '/Volumes/media' }]

  it('maps a path under a folder both nodes declare', () => {
    expect(mapSharedPath('/mnt/media/a/b.mov', origin, self)).toBe('/Volumes/media/a/b.mov')
    expect(mapSharedDir('/mnt/media/a', origin, self)).toBe('/Volumes/media/a')
    expect(mapSharedDir('/mnt/media', origin, self)).toBe('/Volumes/media')
  })

  it('does not map what is outside, a prefix that is not a folder boundary, or an undeclared share', () => {
    expect(mapSharedPath('/mnt/mediax/b.mov', origin, self)).toBeNull()
    expect(mapSharedPath('/mnt/media', origin, self)).toBeNull()
    expect(mapSharedPath('/home/u/b.mov', origin, self)).toBeNull()
    expect(mapSharedPath('/mnt/media/b.mov', origin, [{ name: 'other', path: '/Volumes/media' }])).toBeNull()
    expect(relativeSegments('/mnt/media', '/mnt/media/../etc/passwd')).toBeNull()
  })

  it('maps Windows origin paths (case-insensitive) onto a POSIX worker', () => {
    const win = [{ name: 'media', path: 'D:\\Media' }]
    expect(mapSharedPath('d:\\media\\Clips\\x.mp4', win, self)).toBe('/Volumes/media/Clips/x.mp4')
  })
})

describe('scratch names', () => {
  it('takes the file name of POSIX and Windows paths, never a dot name', async () => {
    const { baseName } = await import('./remoteJob')
    expect(baseName('/a/b/clip [1].mov')).toBe('clip [1].mov')
    expect(baseName('C:\\Users\\me\\clip.mov')).toBe('clip.mov')
    expect(baseName('/a/b\\..')).toBe('input')
    expect(baseName('/a/.')).toBe('input')
  })
})

describe('loopback file services', () => {
  it('knows an address only its own machine reaches', async () => {
    const { isLoopbackUrl } = await import('./remoteJob')
    expect(isLoopbackUrl('http://127.0.0.1:7420')).toBe(true)
    expect(isLoopbackUrl('http://localhost:1')).toBe(true)
    expect(isLoopbackUrl('http://[::1]:1')).toBe(true)
    expect(isLoopbackUrl('http://192.168.1.20:7420')).toBe(false)
    expect(isLoopbackUrl('http://nas.lan:7420')).toBe(false)
  })
})
