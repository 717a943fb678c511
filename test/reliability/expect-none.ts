import { expect } from 'vitest'

/** Fails when `problems` is not empty, showing how many and the first few (the full list can be thousands). */
export function expectNone(problems: string[], context: string, shown = 12): void {
  const head = problems.slice(0, shown).join('\n  ')
  expect(problems.length, `${problems.length} problems ${context}:\n  ${head}${problems.length > shown ? '\n  ...' : ''}`).toBe(0)
}
