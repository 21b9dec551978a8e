import { useRef, useState } from 'react'
import { useShallow } from 'zustand/react/shallow'
import type { Format } from '../../../shared/spec'
import { queueFiles, queuePaths } from '../actions'
import {
  type Choice,
  MAX_SIDE,
  MIN_SIDE,
  UI_AUDIO_FORMATS,
  UI_FORMATS,
  UI_PRIORITIES,
  choiceProblem,
  isFormat,
  isPriority,
} from '../choice'
import { setChoice, storeBridge, useBullpen } from '../store'

/** Id of the hidden file input (browser "Add files…"); tests may set files on it directly. */
export const FILE_INPUT_ID = 'add-files-input'

function sideValue(text: string): number | null {
  if (text.trim() === '') return null
  const n = Number(text)
  return Number.isFinite(n) ? Math.trunc(n) : null
}

/** Preset (named, "Convert to…", "Resize W×H") and priority for the next files; remembered between drops. */
function ChoiceFields(): React.JSX.Element {
  const { choice, priority, presets } = useBullpen(
    useShallow((s) => ({ choice: s.choice, priority: s.priority, presets: s.presets })),
  )
  const selectValue = choice.kind === 'preset' ? `preset:${choice.preset}` : choice.kind
  const format: Format = choice.kind === 'preset' ? 'mp4' : choice.format
  const known = choice.kind !== 'preset' || presets.some((p) => p.name === choice.preset)
  const problem = choiceProblem(choice)
  const hint =
    choice.kind === 'preset'
      ? (presets.find((p) => p.name === choice.preset)?.description ?? '')
      : choice.kind === 'convert'
        ? `Same size, ${choice.format} output`
        : 'One side empty keeps the aspect ratio'

  function onPreset(value: string): void {
    let next: Choice
    if (value === 'convert') next = { kind: 'convert', format }
    else if (value === 'resize')
      next =
        choice.kind === 'resize'
          ? choice
          : {
              kind: 'resize',
              format: UI_AUDIO_FORMATS.includes(format) ? 'mp4' : format,
              width: 1280,
              height: 720,
            }
    else next = { kind: 'preset', preset: value.replace(/^preset:/, '') }
    setChoice(next, priority)
  }

  return (
    <div className="choice">
      <label className="field">
        <span>Preset</span>
        <select value={selectValue} aria-describedby="preset-hint" onChange={(e) => onPreset(e.target.value)}>
          <optgroup label="Presets">
            {presets.map((p) => (
              <option key={p.name} value={`preset:${p.name}`} title={p.description}>
                {p.name}
              </option>
            ))}
            {known || choice.kind !== 'preset' ? null : (
              <option value={`preset:${choice.preset}`}>{choice.preset}</option>
            )}
          </optgroup>
          <optgroup label="Custom">
            <option value="convert">Convert to…</option>
            <option value="resize">Resize W×H</option>
          </optgroup>
        </select>
      </label>
      {choice.kind !== 'preset' ? (
        <label className="field">
          <span>Format</span>
          <select
            value={choice.format}
            onChange={(e) => {
              const f = e.target.value
              if (isFormat(f)) setChoice({ ...choice, format: f }, priority)
            }}
          >
            {UI_FORMATS.filter((f) => choice.kind !== 'resize' || !UI_AUDIO_FORMATS.includes(f)).map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {choice.kind === 'resize' ? (
        <>
          <label className="field narrow">
            <span>Width</span>
            <input
              type="number"
              min={MIN_SIDE}
              max={MAX_SIDE}
              placeholder="auto"
              value={choice.width ?? ''}
              aria-invalid={problem !== null}
              onChange={(e) => setChoice({ ...choice, width: sideValue(e.target.value) }, priority)}
            />
          </label>
          <span className="times" aria-hidden="true">
            ×
          </span>
          <label className="field narrow">
            <span>Height</span>
            <input
              type="number"
              min={MIN_SIDE}
              max={MAX_SIDE}
              placeholder="auto"
              value={choice.height ?? ''}
              aria-invalid={problem !== null}
              onChange={(e) => setChoice({ ...choice, height: sideValue(e.target.value) }, priority)}
            />
          </label>
        </>
      ) : null}
      <label className="field">
        <span>Priority</span>
        <select
          value={priority}
          onChange={(e) => {
            const p = e.target.value
            if (isPriority(p)) setChoice(choice, p)
          }}
        >
          {UI_PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      <p className="preset-hint muted" id="preset-hint">
        {hint}
      </p>
      {problem ? (
        <p className="field-error" role="alert">
          {problem}
        </p>
      ) : null}
    </div>
  )
}

function Uploads(): React.JSX.Element | null {
  const uploads = useBullpen((s) => s.uploads)
  if (uploads.length === 0) return null
  return (
    <ul className="uploads" aria-label="Uploads">
      {uploads.map((u) => {
        const pct = u.total > 0 ? Math.round((u.sent / u.total) * 100) : 0
        return (
          <li key={u.name}>
            <span className="upload-name">{u.name}</span>
            <div
              className="progress"
              role="progressbar"
              aria-label={`Uploading ${u.name}`}
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={pct}
            >
              <div className="progress-fill" style={{ width: `${pct}%` }} />
            </div>
            <span className="progress-text">{pct}%</span>
          </li>
        )
      })}
    </ul>
  )
}

/** The drop zone on top: what to make of the files, and "Add files…" (native dialog or file input). */
export function Adder({ dragging }: { dragging: boolean }): React.JSX.Element {
  const inputRef = useRef<HTMLInputElement>(null)
  const [busy, setBusy] = useState(false)

  async function run(work: () => Promise<unknown>): Promise<void> {
    setBusy(true)
    try {
      await work()
    } finally {
      setBusy(false)
    }
  }

  async function onAdd(): Promise<void> {
    const b = storeBridge()
    const picked = b.kind === 'electron' ? await b.pickFiles() : null
    if (picked === null) inputRef.current?.click()
    else await run(() => queuePaths(picked))
  }

  return (
    <section className={dragging ? 'adder dragging' : 'adder'} aria-label="Add files">
      <div className="drop-hint">
        <svg className="drop-icon" viewBox="0 0 24 24" aria-hidden="true">
          <path d="M12 3v12m0 0-4-4m4 4 4-4M4 17v2a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-2" />
        </svg>
        <div>
          <strong>Drop video or audio files anywhere in this window</strong>
          <span className="muted">They are queued with the preset and priority on the right.</span>
        </div>
        <button type="button" className="primary" disabled={busy} onClick={() => void onAdd()}>
          Add files…
        </button>
        <input
          ref={inputRef}
          id={FILE_INPUT_ID}
          type="file"
          multiple
          hidden
          aria-label="Files to add"
          onChange={(e) => {
            const files = Array.from(e.target.files ?? [])
            e.target.value = ''
            void run(() => queueFiles(files))
          }}
        />
      </div>
      <ChoiceFields />
      <Uploads />
    </section>
  )
}
