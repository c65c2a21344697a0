import { Effect, Layer, Redacted } from "effect"
import * as net from "node:net"
import { DbPostgres } from "../../layers/db/postgres.ts"
import { freshDatabase } from "./postgres.ts"

/*
 * A PostgreSQL that stops answering, as the client sees a SIGSTOPped server or a silent network: a TCP proxy
 * between the service and the test server that stops forwarding (both ways, new connections too) and starts again.
 */

export interface FreezableProxy {
  readonly port: number
  readonly freeze: () => void
  readonly thaw: () => void
}

/** A TCP proxy to `target` that can stop forwarding (both ways, new connections too) and start again. */
export const freezableProxy = (target: { host: string; port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: FreezableProxy; server: net.Server; sockets: Set<net.Socket> }>((resume) => {
      let frozen = false
      const sockets = new Set<net.Socket>()
      const track = (s: net.Socket) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
        s.on("error", () => s.destroy())
        if (frozen) s.pause()
      }
      const server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host)
        track(client)
        track(upstream)
        client.on("data", (chunk) => upstream.write(chunk))
        upstream.on("data", (chunk) => client.write(chunk))
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => client.destroy())
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as net.AddressInfo
        resume(Effect.succeed({
          server,
          sockets,
          proxy: {
            port: address.port,
            freeze: () => {
              frozen = true
              for (const s of sockets) s.pause()
            },
            thaw: () => {
              frozen = false
              for (const s of sockets) s.resume()
            }
          }
        }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))

/** A fresh migrated database, and its URL through a freezable proxy. */
export const frozenDatabase = (label: string) =>
  Effect.gen(function*() {
    const database = yield* freshDatabase(label)
    const direct = new URL(database.url)
    const proxy = yield* freezableProxy({ host: direct.hostname, port: Number(direct.port) })
    const viaProxy = new URL(database.url)
    viaProxy.hostname = "127.0.0.1"
    viaProxy.port = String(proxy.port)
    yield* Layer.build(DbPostgres({ url: Redacted.make(database.url), schema: "staging", migrate: true }))
    return { ...database, proxy, proxyUrl: viaProxy.toString() }
  })

