#!/usr/bin/env python3
"""Draws Bullpen's icons (resources/icon.png 512x512, resources/tray.png 32x32, resources/trayTemplate.png for macOS)
with nothing but the standard library: a rounded blue square with a white "play" triangle over three queue bars."""
import struct
import sys
import zlib
from pathlib import Path


def png(path: Path, size: int, pixel) -> None:
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row.extend(pixel(x + 0.5, y + 0.5, size))
        rows.append(bytes(row))
    raw = b''.join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack('>IIBBBBB', size, size, 8, 6, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def inside_rounded(u: float, v: float, r: float) -> bool:
    # u, v in [0, 1]; rounded square with corner radius r.
    cx = min(max(u, r), 1 - r)
    cy = min(max(v, r), 1 - r)
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


def inside_triangle(u: float, v: float) -> bool:
    # Play triangle pointing right, in the upper part.
    x0, x1, top, bottom = 0.36, 0.70, 0.18, 0.58
    if not (x0 <= u <= x1):
        return False
    half = (bottom - top) / 2 * (1 - (u - x0) / (x1 - x0))
    mid = (top + bottom) / 2
    return mid - half <= v <= mid + half


def inside_bars(u: float, v: float) -> bool:
    for i, width in enumerate((0.56, 0.44, 0.32)):
        y = 0.66 + i * 0.09
        if y <= v <= y + 0.05 and 0.22 <= u <= 0.22 + width:
            return True
    return False


def icon_pixel(x: float, y: float, size: int, template: bool = False):
    u, v = x / size, y / size
    if not inside_rounded(u, v, 0.2):
        return (0, 0, 0, 0)
    mark = inside_triangle(u, v) or inside_bars(u, v)
    if template:
        # macOS template image: black shape on transparent; the mark is cut out.
        return (0, 0, 0, 0) if mark else (0, 0, 0, 255)
    if mark:
        return (255, 255, 255, 255)
    t = v  # vertical gradient
    return (int(37 + 20 * t), int(99 - 30 * t), int(235 - 40 * t), 255)


def supersampled(fn, n=4):
    def pixel(x, y, size):
        acc = [0, 0, 0, 0]
        for i in range(n):
            for j in range(n):
                p = fn(x - 0.5 + (i + 0.5) / n, y - 0.5 + (j + 0.5) / n, size)
                for k in range(4):
                    acc[k] += p[k]
        return bytes(int(a / (n * n)) for a in acc)

    return pixel


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / 'resources')
    out.mkdir(parents=True, exist_ok=True)
    png(out / 'icon.png', 512, supersampled(icon_pixel, 2))
    png(out / 'tray.png', 32, supersampled(icon_pixel))
    png(out / 'trayTemplate.png', 32, supersampled(lambda x, y, s: icon_pixel(x, y, s, True)))


if __name__ == '__main__':
    main()
