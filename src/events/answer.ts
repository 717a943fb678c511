/** The answers of endpoints and hooks: read only as far as needed, so a huge or endless body costs nothing. */

/** The first `limit` bytes of an answer's body, as text; the rest is left unread. */
export async function readAnswer(response: Response, limit: number): Promise<string> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < limit) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.length
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8')
}
