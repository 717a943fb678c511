/**
 * The `filestorage` command line (commander): global options, the commands, and the one place where
 * a failure becomes an error message and an exit code (see errors.ts).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { byteSize } from '../adapters/service/config.js'
import { VERSION } from '../version.js'
import { connect, DEFAULT_URL } from './connection.js'
import type { CliContext } from './context.js'
import { EXIT, reportOf, usageError } from './errors.js'
import { cat, ls, mv, rmCommand, sign, statCommand } from './file-commands.js'
import { get } from './get.js'
import { Output } from './output.js'
import { TransferProgress } from './progress.js'
import { put } from './put.js'
import { parseRemote, requireRemote } from './remote-path.js'
import { stateDir } from './transfer-state.js'

interface GlobalOptions {
  url?: string
  consul?: string
  service: string
  token?: string
  json?: boolean
  progress: boolean
  stateDir?: string
}

const MiB = 1024 * 1024


const sizeArg = (value: string): number => {
  const parsed = byteSize.safeParse(value)
  if (!parsed.success || parsed.data <= 0) throw new InvalidArgumentError(`"${value}" is not a byte size (e.g. 16MiB)`)
  return parsed.data
}

const countArg = (value: string): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('a whole number from 1 to 64')
  return n
}

/** Runs the command line `argv` (as process.argv) and returns the exit code. */
export async function runCli(argv: string[], signal: AbortSignal): Promise<number> {
  const json = argv.includes('--json')
  let out = new Output(json)
  let exitCode: number = EXIT.ok

  const program = new Command('filestorage')
    .description('Command-line client of the filestorage service. Remote paths are written STORE:PATH (disk:reports/a.pdf; disk: is the root).')
    .version(VERSION)
    .addOption(new Option('--url <url>', `the service, e.g. ${DEFAULT_URL} (default when neither this nor --consul is given)`).env('FILESTORAGE_URL'))
    .addOption(new Option('--consul <address>', 'find the service through this Consul agent').env('CONSUL_HTTP_ADDR'))
    .addOption(new Option('--service <name>', 'the service name in Consul').env('FILESTORAGE_SERVICE').default('filestorage'))
    .addOption(new Option('--token <token>', 'bearer token sent with every request').env('FILESTORAGE_TOKEN'))
    .option('--json', 'print results (stdout) and errors (stderr) as JSON')
    .option('--no-progress', 'no progress bars (never shown when stdout or stderr is not a terminal)')
    .addOption(new Option('--state-dir <dir>', 'where interrupted transfers are remembered').env('FILESTORAGE_STATE_DIR'))
    .exitOverride()
    // Usage errors are printed below, as every other error (as JSON with --json).
    .configureOutput({ outputError: () => {} })

  /** Wraps a command's action: builds the context, turns failures into an exit code. */
  const action =
    <Args extends unknown[]>(run: (ctx: CliContext, ...args: Args) => Promise<number>) =>
    async (...args: Args) => {
      const command = args.at(-1) as Command
      const globals = command.optsWithGlobals<GlobalOptions>()
      out = new Output(Boolean(globals.json))
      const connection = connect({
        service: globals.service,
        ...(globals.url ? { url: globals.url } : {}),
        ...(globals.consul ? { consul: globals.consul } : {}),
        ...(globals.token ? { token: globals.token } : {}),
        ...(process.env.CONSUL_HTTP_TOKEN ? { consulToken: process.env.CONSUL_HTTP_TOKEN } : {}),
      })
      const ctx: CliContext = {
        connection,
        out,
        progress: TransferProgress.enabledFor({ progress: globals.progress, json: Boolean(globals.json) }),
        stateDir: stateDir(globals.stateDir),
        signal,
      }
      try {
        exitCode = await run(ctx, ...args)
      } finally {
        connection.client.close()
      }
    }

  program
    .command('ls')
    .description('list folders (names; -l: type, size, modified, name)')
    .argument('<remote...>', 'STORE:PATH of folders or files')
    .option('-l, --long', 'long format', false)
    .option('-r, --recursive', 'every file below, by path', false)
    .action(action((ctx, remotes: string[], o: { long: boolean; recursive: boolean }) => ls(ctx, remotes.map(requireRemote), o)))

  program
    .command('put')
    .description('upload files and folders (-r); large files resume when run again after an interruption')
    .usage('[options] <local...> <remote>')
    .argument('<paths...>', 'files or folders, then STORE:PATH (a trailing slash or an existing folder means "into")')
    .option('-r, --recursive', 'send folders and everything in them', false)
    .option('-n, --no-clobber', 'never replace an existing file (the service refuses: 412)')
    .option('-j, --parallel <n>', 'files sent at once', countArg, 4)
    .option('--chunk-size <size>', 'size of a tus request; larger files go through tus', sizeArg, 16 * MiB)
    .option('--content-type <type>', 'content type of the files (default: guessed from the name by the service)')
    .action(
      action((ctx, paths: string[], o: { recursive: boolean; clobber: boolean; parallel: number; chunkSize: number; contentType?: string }) => {
        const [locals, remote] = lastApart(paths, 'put needs files to send and a STORE:PATH to send them to')
        const target = requireRemote(remote)
        const remoteSource = locals.find((l) => parseRemote(l))
        if (remoteSource) throw usageError(`"${remoteSource}" is remote: put sends local files (use mv between remote paths)`)
        return put(ctx, locals, target, { ...o, noClobber: !o.clobber })
      }),
    )

  program
    .command('get')
    .description('download files and folders (-r); an interrupted download resumes when run again')
    .usage('[options] <remote...> <local>')
    .argument('<paths...>', 'STORE:PATH of files or folders, then a local file or folder (a trailing slash or an existing folder means "into")')
    .option('-r, --recursive', 'fetch folders and everything in them', false)
    .option('-j, --parallel <n>', 'files fetched at once', countArg, 4)
    .action(
      action((ctx, paths: string[], o: { recursive: boolean; parallel: number }) => {
        const [remotes, local] = lastApart(paths, 'get needs STORE:PATHs to fetch and a local place to write them')
        if (parseRemote(local)) throw usageError(`"${local}" is remote: get writes local files (write ./${local} for a local name with a colon)`)
        return get(ctx, remotes.map(requireRemote), local, o)
      }),
    )

  program
    .command('mv')
    .description('move or rename a file or folder, also between stores')
    .argument('<from>', 'STORE:PATH')
    .argument('<to>', 'STORE:PATH; a trailing slash or an existing folder means "into"')
    .option('-f, --overwrite', 'replace a file at the target (else the service refuses: 409)', false)
    .action(action((ctx, from: string, to: string, o: { overwrite: boolean }) => mv(ctx, requireRemote(from), requireRemote(to), o)))

  program
    .command('rm')
    .description('delete files, and folders with -r')
    .argument('<remote...>', 'STORE:PATH')
    .option('-r, --recursive', 'delete folders and everything in them (else a non-empty folder is refused: 409)', false)
    .option('-f, --force', 'no error for what does not exist', false)
    .action(action((ctx, remotes: string[], o: { recursive: boolean; force: boolean }) => rmCommand(ctx, remotes.map(requireRemote), o)))

  program
    .command('stat')
    .description('describe a file (FileInfo) or folder')
    .argument('<remote>', 'STORE:PATH')
    .action(action((ctx, remote: string) => statCommand(ctx, requireRemote(remote))))

  program
    .command('cat')
    .description('write files to stdout')
    .argument('<remote...>', 'STORE:PATH')
    .action(action((ctx, remotes: string[]) => cat(ctx, remotes.map(requireRemote))))

  program
    .command('sign')
    .description('print a signed URL that grants one operation on one file to whoever holds it')
    .argument('<remote>', 'STORE:PATH')
    .addOption(new Option('-o, --operation <operation>', 'what the URL allows').choices(['download', 'upload', 'tus']).default('download'))
    .option('-e, --expires-in <seconds>', 'lifetime of the URL in seconds (default: the service\'s)', (v) => countSeconds(v))
    .option('--max-bytes <size>', 'uploads: the largest body accepted', sizeArg)
    .option('--content-type <type>', 'uploads: the content type the file must have')
    .action(
      action((ctx, remote: string, o: { operation: 'download' | 'upload' | 'tus'; expiresIn?: number; maxBytes?: number; contentType?: string }) =>
        sign(ctx, requireRemote(remote), {
          operation: o.operation,
          ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}),
          ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}),
          ...(o.contentType ? { contentType: o.contentType } : {}),
        }),
      ),
    )

  try {
    await program.parseAsync(argv)
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return EXIT.ok // --help, --version
    const report = reportOf(e)
    if (report.exitCode !== EXIT.interrupted) out.error(report)
    if (report.exitCode === EXIT.usage && !out.json) process.stderr.write('(run filestorage --help for usage)\n')
    exitCode = report.exitCode
  }
  if (exitCode === EXIT.interrupted) {
    const message = 'interrupted (run the same command again to resume)'
    if (out.json) out.error({ exitCode, code: 'interrupted', message })
    else process.stderr.write(`filestorage: ${message}\n`)
  }
  return exitCode
}

/** Variadic arguments, then one more: commander allows no argument after a variadic one. */
function lastApart(paths: string[], message: string): [string[], string] {
  if (paths.length < 2) throw usageError(message)
  return [paths.slice(0, -1), paths.at(-1)!]
}

function countSeconds(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of seconds')
  return n
}
