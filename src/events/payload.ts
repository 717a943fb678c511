/**
 * The body of an event as consumers get it, Standard Webhooks' shape: `{ type, timestamp, data }`,
 * with the store's name in `data`. The same bytes on every try (only the signing headers change),
 * and under 20 KB whatever the event: metadata is at most 16 KiB and a path at most 1,024 bytes.
 */
import type { EventBody } from '../storage/index.js'

export const MAX_PAYLOAD_BYTES = 20 * 1024

export function payloadOf(store: string, event: EventBody): string {
  const { schemaVersion, ...data } = event.data
  return JSON.stringify({ type: event.type, timestamp: event.timestamp, data: { schemaVersion, store, ...data } })
}
