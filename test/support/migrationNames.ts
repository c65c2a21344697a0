import { readdirSync } from "node:fs"

/**
 * The names of the shipped migrations (`migrations/NNNN_name.sql` without `.sql`), in the order they apply: what a
 * fresh database gets. Read from the directory, so a new migration does not mean editing every test that applies
 * them.
 */
export const migrationNames: ReadonlyArray<string> = readdirSync(new URL("../../migrations/", import.meta.url))
  .filter((f) => /^\d{4}_.+\.sql$/.test(f))
  .sort()
  .map((f) => f.slice(0, -".sql".length))
