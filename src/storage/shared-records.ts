/**
 * Small JSON records that every process sharing a store reads and changes atomically, and the
 * liveness of those processes: what a layer above the driver keeps beside the files (the quota
 * ledger, quotas/ledger.ts), without knowing where the driver keeps it.
 *
 * Each driver implements it with the one atomic step it has across processes: the disk store under
 * its cross-process locks (disk/shared-records.ts), the MongoDB store by inserting the record's next
 * version under a unique key, the one write FerretDB v1 keeps atomic under concurrency
 * (mongo/shared-records.ts).
 */
export interface SharedRecords {
  /**
   * The id of this process among those sharing the store, as `alive` knows it. It can change: a
   * process that was silent long enough to be counted dead registers again under a new one.
   */
  owner(): Promise<string>
  /** Which of `owners` are alive now. */
  alive(owners: string[]): Promise<Set<string>>
  /** The record under `key`, or null. */
  read<T>(key: string): Promise<T | null>
  /**
   * Replaces the record under `key` by `change(current)` (null: none yet) atomically, across every
   * process: `change` may run several times (another process changed the record meanwhile) and must
   * depend on its argument only. It returns the new record, null to remove it, or undefined to leave
   * it as it is; whatever it throws is thrown, and nothing is written. Resolves to the record as it
   * is then.
   */
  update<T>(key: string, change: (current: T | null) => T | null | undefined): Promise<T | null>
  /** Every record whose key starts with `prefix`. */
  list<T>(prefix: string): Promise<{ key: string; value: T }[]>
}
