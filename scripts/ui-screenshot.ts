/**
 * Takes docs/ui.png: the file browser page on a folder of files, with a text preview open, in
 * headless Chromium against a service started here (loopback, a temporary disk store).
 *
 *   npm run screenshot:ui            (CHROMIUM_BIN to use another Chromium than /usr/bin/chromium)
 */
import { fileURLToPath } from 'node:url'
import { launchChromium } from '../test/helpers/browser.js'
import { startTestService } from '../test/helpers/test-service.js'
import { buildUi } from './build-ui.js'

const OUT = fileURLToPath(new URL('../docs/ui.png', import.meta.url))

const notes = `# Q3 review

- Uploads over tus resume where they stopped.
- Previews open in a sandboxed frame.
- Every error says what it means.
`
const csv = 'month,income,costs\n' + Array.from({ length: 400 }, (_, i) => `2025-${String((i % 12) + 1).padStart(2, '0')},${1000 + i},${800 + i}`).join('\n')
const files: [string, string | Uint8Array, string][] = [
  ['reports/notes.md', notes, 'text/markdown'],
  ['reports/budget-2025.csv', csv, 'text/csv'],
  ['reports/summary.json', JSON.stringify({ quarter: 'Q3', files: 6 }, null, 2), 'application/json'],
  ['reports/quarterly-report.pdf', new Uint8Array(1_245_184), 'application/pdf'],
  ['reports/team-photo.jpg', new Uint8Array(3_512_320), 'image/jpeg'],
  ['reports/archive/2024.tar.gz', new Uint8Array(18_874_368), 'application/gzip'],
  ['reports/drafts/outline.txt', 'outline', 'text/plain'],
]

await buildUi()
const svc = await startTestService()
const browser = await launchChromium(process.env.CHROMIUM_BIN ?? '/usr/bin/chromium')
try {
  for (const [path, body, type] of files) {
    const res = await fetch(`${svc.api}/disk/upload/${path}`, { method: 'PUT', headers: { 'Content-Type': type }, body })
    if (!res.ok) throw new Error(`upload of ${path}: ${res.status} ${await res.text()}`)
  }
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 }, deviceScaleFactor: 1, colorScheme: 'light', locale: 'en-GB', timezoneId: 'UTC' })
  await page.goto(`${svc.api}/ui#disk/reports`)
  await page.locator('#file-rows tr[data-path="reports/team-photo.jpg"]').waitFor({ timeout: 20_000 })
  await page.locator('#file-rows tr[data-path="reports/notes.md"] button.link').click()
  await page.frameLocator('#preview iframe').locator('body').waitFor({ timeout: 20_000 })
  await page.screenshot({ path: OUT, fullPage: true })
  console.log(`wrote ${OUT}`)
} finally {
  await browser.close()
  await svc.stop()
}
