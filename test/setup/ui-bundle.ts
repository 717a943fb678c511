/**
 * vitest globalSetup: builds the file browser's bundle (dist/ui) that the ui handler serves, so the
 * browser tests run the page of these sources, from `npm test` and from `npx vitest run <file>` alike.
 */
import { buildUi } from '../../scripts/build-ui.js'

export default async function setup(): Promise<void> {
  await buildUi()
}
