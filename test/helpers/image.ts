/**
 * The container images in tests: built by scripts/image.sh (podman, on a base assembled locally, no
 * Docker Hub), and run as a container runtime would run them, with `buildah run --isolation chroot
 * --network host` (podman run cannot set rlimits in the CI sandbox): the image's own command, user,
 * working directory, environment and health check, all read from its configuration. buildah run
 * does not run HEALTHCHECK, so a test runs the image's health command itself, inside the container.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type Exit, spawnChild, type TestChild } from './child-process.js'
import { requireBinary } from './external.js'
import { GiveUp, waitFor } from './wait.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)
const INSTALL = 'scripts/image.sh install'

export type ImageTarget = 'runtime' | 'gateway'

export interface ImageTools {
  podman: string
  buildah: string
}

/** podman, buildah and debootstrap (a cold build assembles the base); undefined (suite skipped) when one is missing. */
export function imageTools(): ImageTools | undefined {
  const podman = requireBinary('PODMAN_BIN', ['/usr/bin/podman'], 'podman', INSTALL)
  const buildah = requireBinary('BUILDAH_BIN', ['/usr/bin/buildah'], 'buildah', INSTALL)
  const debootstrap = requireBinary('DEBOOTSTRAP_BIN', ['/usr/sbin/debootstrap'], 'debootstrap', INSTALL)
  return podman && buildah && debootstrap ? { podman, buildah } : undefined
}

/**
 * `scripts/image.sh build`: the images of this tree, by id. podman's layer cache makes a second
 * build in the same run (or of an unchanged tree) a matter of seconds.
 */
export async function buildImages(timeoutMs: number): Promise<Record<ImageTarget, string>> {
  const { stdout } = await run(`${ROOT}/scripts/image.sh`, ['build', 'runtime', 'gateway'], {
    cwd: ROOT,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`scripts/image.sh build failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`)
  })
  const ids = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split(' ')))
  if (!ids.runtime || !ids.gateway) throw new Error(`scripts/image.sh build printed no image ids:\n${stdout}`)
  return ids as Record<ImageTarget, string>
}

/** What `podman image inspect` says of an image (Docker format: HEALTHCHECK is kept). */
export interface ImageConfig {
  User: string
  Cmd: string[]
  WorkingDir: string
  Env: string[]
  ExposedPorts?: Record<string, unknown>
  Volumes?: Record<string, unknown>
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number }
}

export async function imageConfig(tools: ImageTools, image: string): Promise<ImageConfig> {
  const { stdout } = await run(tools.podman, ['image', 'inspect', '--format', '{{json .Config}}\n{{json .HealthCheck}}', image], { timeout: 30_000 })
  const [config, healthcheck] = stdout.trim().split('\n')
  return { ...(JSON.parse(config!) as ImageConfig), Healthcheck: JSON.parse(healthcheck!) ?? undefined }
}

/**
 * What a run adds to the image's environment. No bind mounts: buildah 1.28 mounts an image VOLUME's
 * own volume over a bind mount at the same path, so a container's /data is the volume buildah made
 * from the image (kept for the working container's life, as a runtime's anonymous volume), and a
 * test reads it from inside.
 */
export interface RunOptions {
  env?: Record<string, string>
}

export interface Exec {
  code: number
  output: string
}

/** The image's main process as it runs in a container. */
export interface RunningContainer extends TestChild {
  /** The process running the image's command (what a runtime signals on stop); its pid on this host. */
  mainPid(): Promise<number>
  /** How the command exited (buildah run's status is the command's), waiting at most `timeoutMs`. */
  exit(timeoutMs?: number): Promise<Exit>
  /**
   * Kills every process of the container, daemons too (nginx leaves buildah's process tree), then
   * buildah. SIGKILL to buildah alone would leave them running.
   */
  kill(): Promise<Exit>
}

/** Every process under `pid`, from /proc. */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid) parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)])
  }
  const found: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/** The processes whose root directory is `root`: one `buildah run`, which chroots into a mount of its own. */
async function processesIn(root: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry) && (await readlink(`/proc/${entry}/root`).catch(() => '')) === root) pids.push(Number(entry))
  }
  return pids
}

const argvOf = async (pid: number): Promise<string[]> =>
  (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter((a, i, all) => a !== '' || i < all.length - 1)

/** A working container of one image (`buildah from`), in which the test runs commands. */
export class ImageContainer {
  private constructor(
    readonly tools: ImageTools,
    readonly name: string,
    readonly config: ImageConfig,
  ) {}

  static async create(tools: ImageTools, image: string): Promise<ImageContainer> {
    const config = await imageConfig(tools, image)
    const { stdout } = await run(tools.buildah, ['from', '--pull=never', '--quiet', image], { timeout: 60_000 })
    return new ImageContainer(tools, stdout.trim(), config)
  }

  private runArgs(command: string[], options: RunOptions): string[] {
    return [
      'run', '--isolation', 'chroot', '--network', 'host',
      ...Object.entries(options.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      this.name, '--', ...command,
    ]
  }

  /** Starts the image's own command (its CMD), as the container's main process. */
  start(options: RunOptions = {}): RunningContainer {
    const command = this.config.Cmd
    const child = spawnChild(this.tools.buildah, this.runArgs(command, options))
    // buildah's chroot helpers stand between buildah and the command: the main process is the one
    // whose argv is the command (the helper runs it by its full path).
    const matches = (argv: string[]) =>
      argv.length === command.length && basename(argv[0]!) === basename(command[0]!) && argv.slice(1).every((a, i) => a === command[i + 1])
    const mainPid = () =>
      waitFor(`the container's command (${command.join(' ')}) to start`, async () => {
        if (!child.running()) throw new GiveUp(`buildah run exited:\n${child.output()}`)
        for (const pid of await descendants(child.child.pid!)) if (matches(await argvOf(pid))) return pid
        return undefined
      })
    const exit = (timeoutMs = 30_000): Promise<Exit> => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the container did not exit within ${timeoutMs} ms:\n${child.output()}`)), timeoutMs)
      })
      return Promise.race([child.exited, timeout]).finally(() => clearTimeout(timer))
    }
    const kill = async (): Promise<Exit> => {
      if (!child.running()) return child.exited
      const inside = await descendants(child.child.pid!)
      const roots = await Promise.all(inside.map((pid) => readlink(`/proc/${pid}/root`).catch(() => '/')))
      const root = roots.find((r) => r !== '/')
      for (const pid of root ? await processesIn(root) : inside) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone already
        }
      }
      // buildah sees its command end and cleans up after it; killed only if it does not.
      return exit(10_000).catch(() => child.stop('SIGKILL'))
    }
    return { ...child, mainPid, exit, kill }
  }

  /** Runs `command` inside the container beside whatever runs there already, to its end. */
  async exec(command: string[], options: RunOptions = {}, timeoutMs = 30_000): Promise<Exec> {
    try {
      const { stdout, stderr } = await run(this.tools.buildah, this.runArgs(command, options), { timeout: timeoutMs })
      return { code: 0, output: stdout + stderr }
    } catch (e) {
      const error = e as Error & { code?: number | string; stdout?: string; stderr?: string; killed?: boolean }
      if (typeof error.code !== 'number' || error.killed) throw error
      return { code: error.code, output: (error.stdout ?? '') + (error.stderr ?? '') }
    }
  }

  /**
   * The image's HEALTHCHECK command, run as a runtime runs it: inside the container, with the
   * container's environment, bounded by the check's own timeout. `CMD-SHELL` goes through /bin/sh.
   */
  healthcheck(options: RunOptions = {}): Promise<Exec> {
    const check = this.config.Healthcheck
    if (!check) throw new Error('the image has no HEALTHCHECK')
    const [kind, ...rest] = check.Test
    const command = kind === 'CMD-SHELL' ? ['/bin/sh', '-c', rest.join(' ')] : kind === 'CMD' ? rest : undefined
    if (!command) throw new Error(`the HEALTHCHECK is ${check.Test.join(' ')}`)
    // Timeout in nanoseconds; buildah's own start-up counts too.
    return this.exec(command, options, (check.Timeout ? check.Timeout / 1e6 : 30_000) + 10_000)
  }

  async remove(): Promise<void> {
    await run(this.tools.buildah, ['rm', this.name], { timeout: 60_000 })
  }
}
