import { defineConfig } from 'vitest/config';

/**
 * The messaging suites run once per I/O backend (test/support/test-backend.ts): the default
 * project on the mmap backend with every suite, and two more projects with the messaging
 * suites on the plain-file backend and the simulated disk. Suites whose stores live in child
 * processes or that open them read-only from the real files stay on the default project.
 */
const MESSAGING = ['test/client/**/*.test.ts', 'test/broker/**/*.test.ts',
  'test/observability/**/*.test.ts'];
const REAL_FILES_ONLY = ['test/client/push-crash.test.ts', 'test/client/transaction-crash.test.ts',
  'test/client/consumer-lifetime.test.ts', 'test/client/pull-consumer-groups.test.ts',
  'test/observability/logger.test.ts'];
/** Suites that open no store: once is enough. */
const NO_STORE = ['test/client/allocate.test.ts', 'test/client/process-queue.test.ts',
  'test/broker/message.test.ts', 'test/broker/names.test.ts', 'test/broker/pull-hold.test.ts',
  'test/broker/schedule-structures.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'mmap', include: ['test/**/*.test.ts'] } },
      { extends: true, test: { name: 'file', include: MESSAGING,
        exclude: [...REAL_FILES_ONLY, ...NO_STORE], env: { PMQ_TEST_BACKEND: 'file' } } },
      { extends: true, test: { name: 'sim', include: MESSAGING,
        exclude: [...REAL_FILES_ONLY, ...NO_STORE], env: { PMQ_TEST_BACKEND: 'sim' } } },
    ],
  },
});
