#!/usr/bin/env bash
# One-time set-up of a machine for Bullpen: the system programs it runs (ffmpeg/ffprobe, redis-server, and chromium
# for the browser tests) when they are missing, then the npm packages. Safe to run again.
#
# On a machine that cannot download the Electron and ffmpeg-static binaries, export
# ELECTRON_SKIP_BINARY_DOWNLOAD=1 and FFMPEG_BIN="$(command -v ffmpeg)" first (ffmpeg-static then reports that path).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v redis-server >/dev/null || need+=(redis-server)
if [[ "${BULLPEN_SKIP_BROWSER:-}" != 1 ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  need+=(chromium)
fi

if ((${#need[@]})); then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if command -v apt-get >/dev/null; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "setup: installing ${need[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v brew >/dev/null; then
    brew_pkgs=("${need[@]/redis-server/redis}")
    brew_pkgs=("${brew_pkgs[@]/chromium/}")
    echo "setup: installing ${brew_pkgs[*]} with brew"
    brew install ${brew_pkgs[*]}
  else
    echo "setup: please install: ${need[*]} (ffmpeg with ffprobe, redis-server; chromium for the browser tests)" >&2
    exit 1
  fi
fi

if [[ -z "${FFMPEG_BIN:-}" && "${ELECTRON_SKIP_BINARY_DOWNLOAD:-}" == 1 ]]; then
  # Same machine class as CI: no binary downloads, so ffmpeg-static must report the system ffmpeg.
  export FFMPEG_BIN="$(command -v ffmpeg)"
fi

npm ci --no-audit --no-fund
# The bundled static ffprobe is installed "chmod u+x" by its package: let every user of this checkout run it.
chmod a+rx node_modules/@ffprobe-installer/*/ffprobe* 2>/dev/null || true
