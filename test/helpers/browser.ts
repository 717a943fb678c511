/**
 * Headless Chromium (Debian's `chromium`) driven by playwright-core, for the browser tests. The
 * browser reaches the service under test and nothing else: every request to another origin is
 * refused and recorded, so a page that needs the internet (a CDN) fails its test.
 */
import { type Browser, type BrowserContext, chromium } from 'playwright-core'
import { requireBinary } from './external.js'

/** The Chromium to run (CHROMIUM_BIN, or Debian's); undefined (suite skipped) when missing outside CI. */
export const chromiumPath = (): string | undefined => requireBinary('CHROMIUM_BIN', ['/usr/bin/chromium'], 'Chromium (apt-get install chromium)')

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 60_000,
  })
}

export interface IsolatedContext {
  context: BrowserContext
  /** Every URL the pages asked for outside `origin` (each one refused). */
  blocked: string[]
}

/** A fresh browser context (its own storage) whose pages may only reach `origin`. */
export async function isolatedContext(browser: Browser, origin: string): Promise<IsolatedContext> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 800 } })
  context.setDefaultTimeout(30_000) // bounded, with room for a machine shared by several test runs
  const blocked: string[] = []
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url())
    // Only the network is refused: blob:, data: and the browser's own pages (its PDF viewer) are not.
    if (url.origin === origin || !['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return route.continue()
    blocked.push(url.href)
    return route.abort('blockedbyclient')
  })
  return { context, blocked }
}
