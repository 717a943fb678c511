/** Waiting for a condition, with a deadline: the one way these tests wait on other processes. */

/** Thrown by a probe when waiting longer is pointless (the process it waits on has exited). */
export class GiveUp extends Error {}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
      last = undefined
    } catch (e) {
      if (e instanceof GiveUp) throw e
      last = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`)
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100))
  }
}
