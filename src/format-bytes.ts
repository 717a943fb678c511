/**
 * A byte count for people (`1.5 MiB`), shared by the command-line client and the file browser page:
 * plain bytes below 1 KiB, else the largest binary unit, with `digits[0]` decimals below 10 and
 * `digits[1]` from 10 on. No Node or DOM dependency: the page's bundle takes it as it is.
 */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(bytes: number, digits: readonly [number, number] = [2, 1]): string {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? digits[0] : digits[1])} ${UNITS[unit]}`
}
