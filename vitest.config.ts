import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One real PostgreSQL for the whole run (unless POSTGRES_URL is given); suites take their own databases.
    globalSetup: ["test/support/postgresGlobalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
