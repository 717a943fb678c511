/**
 * The running nginx, known by its pid file: reload it (SIGHUP, nginx's documented reload signal:
 * new workers with the new configuration, old ones finish their requests) and tell whether it runs.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

export async function nginxPid(pidFile: string): Promise<number> {
  const pid = Number.parseInt(await readFile(pidFile, 'utf8'), 10)
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${pidFile} holds no pid`)
  return pid
}

export async function reloadNginx(pidFile: string): Promise<void> {
  process.kill(await nginxPid(pidFile), 'SIGHUP')
}

/** False when the pid file is gone or its process has exited (a zombie counts as exited). */
export async function nginxRunning(pidFile: string): Promise<boolean> {
  let pid: number
  try {
    pid = await nginxPid(pidFile)
  } catch {
    return false
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z'
  } catch {
    if (existsSync('/proc/self')) return false // /proc works, so there is no such process
  }
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
