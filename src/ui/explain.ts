/**
 * What an API error means for the person in front of the page: the API's own code and message,
 * and a sentence on what to do about it.
 */
import { ApiError } from './api.js'

const HINTS: Record<number, string> = {
  0: 'The service could not be reached: is it running, and is this page served by it?',
  401: 'The service did not accept your token (none, expired, or signed with another key): paste a valid token above.',
  403: 'Your token is valid but does not grant this: it needs the right for this action on this store and path (read, write or delete). Ask for a token with that right.',
  404: 'It is not there (any more): someone may have moved or deleted it. The listing is refreshed.',
  409: 'It conflicts with what is there: a file or folder of that name exists, or the folder is not empty.',
  412: 'It changed meanwhile: refresh and try again.',
  413: 'It is larger than the service accepts.',
  429: 'Too many requests for now: wait a moment and try again.',
  503: 'The store is unavailable right now: try again in a moment.',
  507: 'The store is full.',
}

/** Where the status alone would mislead (a 403 that is not about rights). */
const CODE_HINTS: Record<string, string> = {
  quota_exceeded: 'The quota of this folder or store is full: delete files, or cancel uploads under way, to make room.',
}

export interface Explained {
  /** e.g. `delete disk:a.txt: 403 forbidden` */
  title: string
  /** The API's message. */
  message: string
  hint: string
}

export function explain(error: unknown): Explained {
  if (!(error instanceof ApiError)) return { title: 'unexpected error', message: String((error as Error)?.message ?? error), hint: '' }
  const status = error.status === 0 ? 'no answer' : `${error.status} ${error.code}`
  return { title: `${error.action}: ${status}`, message: error.message, hint: CODE_HINTS[error.code] ?? HINTS[error.status] ?? '' }
}
