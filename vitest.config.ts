import { configDefaults, defineConfig } from 'vitest/config'

/**
 * The second lane of `npm test` (scripts/test-lanes.ts runs the two lanes side by side, each file
 * after file): the files that keep the 2 cores less than half busy, measured, since most of their
 * time is waiting (timeouts waited out, Consul's reaper, retry backoffs, rate budgets refilling, a
 * SeaweedFS cluster joining its lock ring or holding writes through an outage, liveness windows,
 * FerretDB), then the lightest of the others until both lanes take about as long.
 */
const SECOND_LANE = [
  'test/adapters/slow-clients.test.ts',
  'test/adapters/mongo-outage.test.ts',
  'test/adapters/rate-limits.test.ts',
  'test/e2e/seaweedfs-cluster.test.ts',
  'test/e2e/s3-fleet.test.ts',
  'test/e2e/consul-registration.test.ts',
  'test/e2e/cli.test.ts',
  'test/e2e/nginx-accel.test.ts',
  'test/events/recording.test.ts',
  'test/events/delivery.test.ts',
  'test/events/hooks.test.ts',
  'test/observability/logs.test.ts',
  'test/observability/metrics.test.ts',
  'test/storage/quotas.test.ts',
  'test/storage/mongo-leases.test.ts',
  'test/storage/mongo.test.ts',
  'test/storage/upload-engine.test.ts',
  'test/handlers/tus-protocol.test.ts',
]

// Each lane runs its files one at a time: the suites that start real services or move gigabytes
// must not compete for 2 cores with more than one other file. `npx vitest run` alone runs both
// lanes' files one after another (a vitest run's maxWorkers counts across its projects).
const lane = { testTimeout: 60_000, hookTimeout: 120_000, fileParallelism: false } as const

export default defineConfig({
  test: {
    fileParallelism: false,
    reporters: ['default'],
    projects: [
      {
        test: {
          ...lane,
          name: 'main',
          include: ['test/**/*.test.ts'],
          // The reliability suite has its own command and config (npm run test:reliability, vitest.reliability.config.ts).
          exclude: [...configDefaults.exclude, 'test/reliability/**', ...SECOND_LANE],
          globalSetup: ['test/setup/services.ts', 'test/setup/ui-bundle.ts'],
        },
      },
      { test: { ...lane, name: 'second', include: SECOND_LANE, globalSetup: ['test/setup/services.ts'] } },
    ],
  },
})
