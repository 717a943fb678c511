import { defineConfig } from 'vitest/config'

/**
 * `npm run test:reliability`: the black-box reliability suite (test/reliability) against the built
 * service in child processes. Separate from `npm test`, which it would slow down by minutes; CI
 * (.ci/run) runs both.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/setup/services.ts', 'test/setup/reliability-figures.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Every audit loads the 2 cores on its own; run them one after another.
    fileParallelism: false,
    reporters: ['default'],
  },
})
