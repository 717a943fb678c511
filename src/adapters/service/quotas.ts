/**
 * The stores of the configuration under their quotas (QUOTAS, QUOTAS_FILE): each store a rule names
 * gets a ledger in its driver's shared records (storage/quotas). A rule for a store that is not
 * served, or for one whose driver cannot keep a ledger (the s3 store's with S3_CONDITIONAL_WRITES=false), stops start-up: a `*` rule
 * too, rather than leave a store the operator meant to limit without limits.
 */
import { DriverStore, type Store, StoreRegistry, withQuotas } from '../../storage/index.js'
import { type Config, ConfigError } from './config.js'
import { quotasOf } from './quota-config.js'

export function withConfiguredQuotas(stores: StoreRegistry, config: Config, log: (line: string) => void): StoreRegistry {
  const rules = [...config.QUOTAS, ...config.QUOTAS_FILE]
  if (rules.length === 0) return stores
  const problems: string[] = []
  const seen = new Set<string>()
  for (const rule of rules) {
    const key = `${rule.store}:${rule.prefix}`
    if (seen.has(key)) problems.push(`two rules for "${key}" (QUOTAS and QUOTAS_FILE)`)
    seen.add(key)
    if (rule.store !== '*' && !stores.names().includes(rule.store)) problems.push(`there is no store "${rule.store}" (stores: ${stores.names().join(', ')})`)
  }
  const recordsOf = (store: Store) => (store instanceof DriverStore ? store.driver.sharedRecords?.bind(store.driver) : undefined)
  for (const [name, store] of stores.entries()) {
    if (quotasOf(name, rules).length > 0 && !recordsOf(store)) {
      problems.push(
        `the store "${name}" (${store.kind}) cannot keep quotas: its driver keeps no records shared by every instance, where the ledger lives ` +
          '(the disk and MongoDB stores do, and the s3 store on a server with conditional writes; docs/operations.md#quotas); name the stores that can instead of "*", or remove its rules',
      )
    }
  }
  if (problems.length > 0) {
    void stores.close()
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  QUOTAS: ${p}`).join('\n')}`)
  }
  const limited = new StoreRegistry()
  for (const [name, store] of stores.entries()) {
    const mine = quotasOf(name, rules)
    const records = recordsOf(store)
    if (mine.length === 0 || !records) {
      limited.add(name, store)
      continue
    }
    limited.add(
      name,
      withQuotas(store, records('quotas'), mine, {
        store: name,
        recoveryIntervalMs: config.QUOTA_RECOVERY_INTERVAL,
        recountIntervalMs: config.QUOTA_RECOUNT_INTERVAL,
        log,
      }),
    )
  }
  return limited
}
