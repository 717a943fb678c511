/**
 * Running test/helpers/store-child.ts: a second process on a store, killed on purpose (a failpoint
 * from src/storage/failpoints.ts, or kill -9 part way through a body).
 */
import { spawnChild, type TestChild } from './child-process.js'
import { compiled } from './compiled.js'

export function spawnStoreChild(command: Record<string, unknown>, failpoints: string[] = []): TestChild {
  return spawnChild(process.execPath, [compiled('test/helpers/store-child.ts'), JSON.stringify(command)], {
    env: { ...process.env, FILESTORAGE_FAILPOINTS: failpoints.join(',') },
  })
}

/** Runs one command in a store child with `failpoints` armed; resolves when it exits (killed or done). */
export async function runStoreChild(command: Record<string, unknown>, failpoints: string[] = []) {
  const child = spawnStoreChild(command, failpoints)
  let timer: NodeJS.Timeout | undefined
  try {
    const exit = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the store child did not end: ${child.output()}`)), 30_000)
      }),
    ])
    return { exit, output: child.output() }
  } finally {
    clearTimeout(timer)
    if (child.running()) await child.stop('SIGKILL')
  }
}

export async function waitForOutput(child: TestChild, text: string): Promise<void> {
  for (let i = 0; i < 300 && !child.output().includes(text); i++) {
    if (!child.running()) throw new Error(`child ended: ${child.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!child.output().includes(text)) throw new Error(`no "${text}" from child: ${child.output()}`)
}

