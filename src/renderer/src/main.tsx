import './styles.css'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { getBridge } from './bridge'
import { initStore } from './store'

const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root element')

try {
  // Subscribed once, at module level, for the life of the window (CONVENTIONS 12).
  initStore(getBridge())
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  )
} catch (err) {
  root.textContent = `Bullpen cannot reach its core: ${err instanceof Error ? err.message : String(err)}`
  root.className = 'fatal'
  root.setAttribute('role', 'alert')
}
