/** Quotas on a store: the rules, the ledger and the store that applies them (see ledger.ts). */
import type { SharedRecords } from '../shared-records.js'
import type { Store } from '../types.js'
import { type LedgerOptions, QuotaLedger } from './ledger.js'
import { QuotaStore } from './quota-store.js'
import { type QuotaRule, QuotaRules } from './rules.js'

export type { Amount, Limits } from './bucket.js'
export { type LedgerOptions, QuotaLedger, type QuotaUsage } from './ledger.js'
export { QuotaStore } from './quota-store.js'
export { parseRulePrefix, type QuotaRule, QuotaRules } from './rules.js'

/**
 * `store` under `rules`, its ledger kept in `records` (the driver's `sharedRecords('quotas')`); its
 * rounds start at once.
 */
export function withQuotas(store: Store, records: SharedRecords, rules: QuotaRule[], options: LedgerOptions): QuotaStore {
  const ledger = new QuotaLedger(store, records, new QuotaRules(rules), options)
  ledger.start()
  return new QuotaStore(store, ledger)
}
