import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/services.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites that start real services (FerretDB, Consul, nginx) or move gigabytes must not compete for 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
})
