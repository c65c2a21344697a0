/**
 * Starts a throw-away embedded PostgreSQL for `.ci/container.sh`, writes its URL to the file named by the first
 * argument, and keeps it running until SIGTERM or SIGINT, when it stops the server and removes its data.
 */
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"

const urlFile = process.argv[2]
if (urlFile === undefined) {
  console.error("usage: postgres.ts <url-file>")
  process.exit(64)
}
const scope = Effect.runSync(Scope.make())
const dataDir = await tempDataDir("riscv-runner-ci-pg-")
const running = await Effect.runPromise(startEmbeddedPostgres({ dataDir, persistent: false }).pipe(Scope.extend(scope)))
fs.writeFileSync(urlFile, running.url)
const stop = () => {
  Effect.runPromise(Scope.close(scope, Exit.void)).finally(() => process.exit(0))
}
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
setInterval(() => undefined, 60_000)
