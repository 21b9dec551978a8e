import { useVirtualizer } from '@tanstack/react-virtual'
import { useEffect, useRef } from 'react'
import { ensureRange, useBullpen } from '../store'
import { JobRow, ROW_HEIGHT } from './JobRow'

const EMPTY: Record<string, string> = {
  waiting: 'No jobs are waiting. Drop files on the window to queue some.',
  active: 'Nothing is running right now.',
  completed: 'No completed jobs.',
  failed: 'No failed jobs.',
  delayed: 'No delayed jobs (retries wait here).',
  paused: 'No paused jobs.',
}

/**
 * The current tab's jobs in a virtual list: only the rows in view (plus a few) exist in the DOM, and the pages
 * under them are fetched as they scroll into view. Up/Down/Home/End move the focus between rows.
 */
export function JobList(): React.JSX.Element {
  const list = useBullpen((s) => s.list)
  const scrollRef = useRef<HTMLDivElement>(null)
  // eslint-disable-next-line react-hooks/incompatible-library -- TanStack Virtual is not memoisable by the React Compiler; this component is not compiled.
  const virtualizer = useVirtualizer({
    count: list.total,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    // Before the scroll element is measured (first render), assume a window's worth of rows.
    initialRect: { width: 1000, height: 640 },
  })
  const items = virtualizer.getVirtualItems()
  const first = items[0]?.index ?? 0
  const last = items[items.length - 1]?.index ?? -1

  useEffect(() => {
    if (last >= first) ensureRange(first, last)
  }, [first, last, list.state])

  useEffect(() => {
    scrollRef.current?.scrollTo?.({ top: 0 })
  }, [list.state])

  // When the focused row goes away (cancelled, removed, finished), the focus moves to the row now in its place
  // instead of falling back to the page.
  const lastFocused = useRef<number | null>(null)
  useEffect(() => {
    const i = lastFocused.current
    if (i === null || list.total === 0 || document.activeElement !== document.body) return
    const next = Math.min(i, list.total - 1)
    scrollRef.current?.querySelector<HTMLElement>(`[data-index="${next}"]`)?.focus({ preventScroll: true })
  }, [list])

  function onKeyDown(e: React.KeyboardEvent<HTMLDivElement>): void {
    const keys = ['ArrowDown', 'ArrowUp', 'Home', 'End']
    if (!keys.includes(e.key) || !(e.target instanceof HTMLElement)) return
    // Leave the arrows to selects and inputs inside the rows.
    if (e.target.closest('select, input')) return
    const row = e.target.closest<HTMLElement>('[data-index]')
    const current = row ? Number(row.dataset['index']) : -1
    let next = current
    if (e.key === 'ArrowDown') next = current + 1
    else if (e.key === 'ArrowUp') next = current - 1
    else if (e.key === 'Home') next = 0
    else next = list.total - 1
    next = Math.max(0, Math.min(list.total - 1, next))
    if (next === current || list.total === 0) return
    e.preventDefault()
    virtualizer.scrollToIndex(next)
    requestAnimationFrame(() =>
      scrollRef.current?.querySelector<HTMLElement>(`[data-index="${next}"]`)?.focus({ preventScroll: true }),
    )
  }

  const seen = new Set<string>()
  return (
    <div
      className="job-scroll"
      ref={scrollRef}
      onKeyDown={onKeyDown}
      onBlur={(e) => {
        // Focus that moved elsewhere on purpose is left alone.
        if (e.relatedTarget instanceof Node && !e.currentTarget.contains(e.relatedTarget))
          lastFocused.current = null
      }}
      onFocus={(e) => {
        const row = e.target.closest<HTMLElement>('[data-index]')
        lastFocused.current = row ? Number(row.dataset['index']) : null
      }}
    >
      {list.total === 0 ? (
        <p className="empty">{EMPTY[list.state]}</p>
      ) : (
        <div
          role="list"
          aria-label={`${list.state} jobs`}
          className="job-list"
          style={{ height: virtualizer.getTotalSize() }}
        >
          {items.map((item) => {
            const id = list.ids[item.index]
            // Keyed by job, so that a button never stays focused while its row turns into another job's.
            const key = id === undefined || seen.has(id) ? `at-${item.index}` : id
            if (id !== undefined) seen.add(id)
            return (
              <div
                key={key}
                role="listitem"
                aria-setsize={list.total}
                aria-posinset={item.index + 1}
                data-index={item.index}
                data-job-id={id}
                tabIndex={-1}
                className="job-slot"
                style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
              >
                {id === undefined ? (
                  <div className="job-row placeholder" aria-busy="true" />
                ) : (
                  <JobRow id={id} />
                )}
              </div>
            )
          })}
        </div>
      )}
    </div>
  )
}
