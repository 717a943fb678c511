/**
 * Small statistics over repeated runs: the median is what the table reports.
 */

/** Median of the values (the mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Bytes per second in MB/s (10^6 bytes per second). */
export const megabytesPerSecond = (bytes: number, seconds: number): number => bytes / seconds / 1e6

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB
