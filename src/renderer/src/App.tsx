/*
 * Accessible names and roles of the main controls (for end-to-end tests; `<file>` is the job's input file name):
 *
 * Header
 *   heading "Bullpen" (h1)
 *   status  — connection: "Connecting…" | "Connected" | "Reconnecting…" | "Redis unreachable" (+ " · <redis url>")
 *   group "Queue controls":
 *     button "Pause this node" ⇄ "Resume this node"     (stats.localPaused)
 *     button "Pause pool" ⇄ "Resume pool"               (stats.poolPaused)
 *     spinbutton "Concurrency"                          (settings.concurrency, saved ~0.6 s after a change)
 *     link "Queue dashboard"                            (only when dashboardUrl() is not null; opens a new tab)
 *     button "Settings"                                 (aria-expanded; toggles region/complementary "Settings")
 * alert — connection banner while connection.state is 'down' or 'reconnecting': "Redis is unreachable at <url>. …",
 *   or "Not connected to the Bullpen server. <message>" when the web bridge lost the serving node
 * region "Add files" (the drop zone; the whole window accepts dropped files, .adder.dragging + overlay while dragging)
 *   button "Add files…"      Electron: native dialog; browser: clicks the hidden <input type=file multiple
 *                            id="add-files-input" aria-label="Files to add"> (Playwright: setInputFiles on it)
 *   combobox "Preset"        options "preset:<name>" (one per listPresets()), "convert" ("Convert to…"),
 *                            "resize" ("Resize W×H")
 *   combobox "Format"        only for "convert"/"resize"
 *   spinbutton "Width", spinbutton "Height"   only for "resize" (empty = auto)
 *   combobox "Priority"      high | normal | low
 *   list "Uploads" → progressbar "Uploading <name>"   (browser uploads in flight)
 * tablist "Jobs by state": tab "Waiting <n>", "Active <n>", "Completed <n>", "Failed <n>", "Delayed <n>",
 *   "Paused <n>" (aria-selected; Left/Right/Home/End move between them)
 *   combobox "Clean jobs older than" (any age | 1 hour | 1 day | 1 week) + button "Clean old jobs"
 * tabpanel (labelled by the selected tab) → list "<state> jobs" (virtual: only rows in view exist) → listitem per job:
 *   progressbar "Progress of <file>"  (active jobs; aria-valuenow 0–100, absent while indeterminate;
 *                                       aria-valuetext "42% · 87 fps · 3.1× · ETA 0:12")
 *   combobox "Change priority of <file>"          (waiting/delayed/paused)
 *   button "Move <file> to top"                   (waiting)
 *   button "Cancel <file>"                        (waiting/delayed/paused/active)
 *   button "Retry <file>"                         (failed; the failure reason is shown in the row)
 *   button "Reveal output of <file>"              (completed)
 *   button "Remove <file>"                        (completed/failed)
 *   Each listitem (and the row inside it) carries data-job-id="<id>"; unloaded rows are empty and aria-busy.
 * complementary "Settings" (when open): radio "Local (default, on this computer)" | "Remote (shared by a pool of
 *   nodes)"; textbox "Redis URL", "Redis password", checkbox "Use TLS (rediss://)" (remote only);
 *   spinbutton "Jobs at once"; textbox "Output folder"; textbox "Node name";
 *   checkbox "Notifications when jobs finish"; button "Save settings"; button "Close settings" (or Escape);
 *   table "Nodes in the pool" (Name, Host, Jobs "active/concurrency", Last hour "<n> done").
 * status — information messages (e.g. "Queued 2 files (720p, normal priority)", "Removed 3 old jobs.");
 * alert — error messages; each has a button "Dismiss message" / "Dismiss error".
 */
import { useCallback } from 'react'
import { queueFiles } from './actions'
import { describeChoice } from './choice'
import { Adder } from './components/Adder'
import { ConnectionBanner } from './components/ConnectionBanner'
import { Header } from './components/Header'
import { JobList } from './components/JobList'
import { Notices } from './components/Notices'
import { QueueTabs, TAB_PANEL_ID, tabId } from './components/QueueTabs'
import { SettingsPanel } from './components/SettingsPanel'
import { useBullpen } from './store'
import { useFileDrop } from './useFileDrop'

function DropOverlay(): React.JSX.Element {
  const label = useBullpen((s) => describeChoice(s.choice))
  const priority = useBullpen((s) => s.priority)
  return (
    <div className="drop-overlay" aria-hidden="true">
      <div className="drop-card">
        Drop to queue as <strong>{label}</strong>, {priority} priority
      </div>
    </div>
  )
}

/** The whole window. Expects `initStore(bridge)` to have been called. */
export function App(): React.JSX.Element {
  const onFiles = useCallback((files: File[]) => void queueFiles(files), [])
  const dragging = useFileDrop(onFiles)
  const tab = useBullpen((s) => s.tab)
  const settingsOpen = useBullpen((s) => s.settingsOpen)

  return (
    <div className={dragging ? 'app dragging' : 'app'}>
      <Header />
      <ConnectionBanner />
      <div className="body">
        <main className="main">
          <Adder dragging={dragging} />
          <section className="queue" aria-label="Queue">
            <QueueTabs />
            <div className="panel" role="tabpanel" id={TAB_PANEL_ID} aria-labelledby={tabId(tab)}>
              <JobList />
            </div>
          </section>
        </main>
        {settingsOpen ? <SettingsPanel /> : null}
      </div>
      <Notices />
      {dragging ? <DropOverlay /> : null}
    </div>
  )
}
