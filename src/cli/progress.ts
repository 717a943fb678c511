/**
 * Progress bars for `put` and `get` (cli-progress, on stderr): one bar per file in flight, and a
 * total with throughput and ETA. Disabled (every call a no-op) when stdout or stderr is not a
 * terminal, with `--no-progress`, and with `--json`.
 */
import cliProgress from 'cli-progress'
import { formatBytes } from './output.js'

export interface FileProgress {
  /** Bytes of the file done so far (resumed bytes included). */
  set(bytes: number): void
  /** The file is finished (or failed): its bar goes away. */
  done(): void
}

const NOTHING: FileProgress = { set: () => {}, done: () => {} }

const LABEL_WIDTH = 32

export class TransferProgress {
  readonly #bars: cliProgress.MultiBar | undefined
  readonly #total: cliProgress.SingleBar | undefined
  readonly #startedAt = Date.now()
  #value = 0
  /** Bytes that were there before this run (resumed transfers): not counted in the throughput. */
  #resumed = 0

  constructor(enabled: boolean, totalBytes: number, files: number) {
    if (!enabled) return
    this.#bars = new cliProgress.MultiBar(
      {
        format: '{label} |{bar}| {percentage}% {value}/{total}',
        formatValue: (v, _options, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)),
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 5,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    )
    this.#total = this.#bars.create(
      totalBytes,
      0,
      { label: pad(`total (${files} files)`), speed: formatBytes(0) },
      { format: '{label} |{bar}| {percentage}% {value}/{total} {speed}/s ETA {eta_formatted}' },
    )
  }

  static enabledFor(options: { progress: boolean; json: boolean }): boolean {
    return options.progress && !options.json && Boolean(process.stdout.isTTY) && Boolean(process.stderr.isTTY)
  }

  file(label: string, size: number, start = 0): FileProgress {
    const bars = this.#bars
    if (!bars) return NOTHING
    const bar = bars.create(size, start, { label: pad(label) })
    let last = start
    this.#resumed += start
    this.#advance(start)
    return {
      set: (bytes) => {
        this.#advance(bytes - last)
        last = bytes
        bar.update(bytes)
      },
      done: () => bars.remove(bar),
    }
  }

  /** A line above the bars (a warning, a finished file), without breaking them. */
  log(line: string): void {
    if (this.#bars) this.#bars.log(`${line}\n`)
    else process.stderr.write(`${line}\n`)
  }

  stop(): void {
    this.#bars?.stop()
  }

  #advance(delta: number): void {
    if (!this.#total) return
    this.#value += delta
    const seconds = (Date.now() - this.#startedAt) / 1000
    const rate = seconds > 0 ? (this.#value - this.#resumed) / seconds : 0
    this.#total.update(this.#value, { speed: formatBytes(Math.max(0, rate)) })
  }
}

function pad(label: string): string {
  const short = label.length > LABEL_WIDTH ? `…${label.slice(label.length - LABEL_WIDTH + 1)}` : label
  return short.padEnd(LABEL_WIDTH)
}
