import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The reliability suite has its own command and config (npm run test:reliability, vitest.reliability.config.ts).
    exclude: [...configDefaults.exclude, 'test/reliability/**'],
    globalSetup: ['test/setup/services.ts', 'test/setup/ui-bundle.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites that start real services (FerretDB, Consul, nginx) or move gigabytes must not compete for 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
})
