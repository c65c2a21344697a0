import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer, type IncomingMessage, type ServerOptions, type ServerResponse } from "node:http"
import type { ListenOptions } from "node:net"
import { type FrontHandler, HttpFrontDoor } from "../../src/services/HttpFrontDoor.ts"

/**
 * A Node HTTP server for `@effect/platform` (as `NodeHttpServer.layer`) with a front door: the handler opened on
 * `HttpFrontDoor` sees each request first, and only the requests it leaves reach the platform's listener. The
 * server's `emit` is where Node hands a parsed request to its listeners, so the one hook there covers both.
 */
export const NodeHttpServerWithFrontDoor = (listen: ListenOptions, options: ServerOptions = {}) =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = createServer(options)
    let front: FrontHandler | undefined
    const emit = server.emit.bind(server) as (event: string | symbol, ...args: Array<unknown>) => boolean
    server.emit = ((event: string | symbol, ...args: Array<unknown>): boolean => {
      if (event === "request" && front !== undefined && front(args[0] as IncomingMessage, args[1] as ServerResponse)) return true
      return emit(event, ...args)
    }) as typeof server.emit
    const door = HttpFrontDoor.of({
      open: (handler) =>
        Effect.acquireRelease(Effect.sync(() => void (front = handler)), () => Effect.sync(() => {
          if (front === handler) front = undefined
        }))
    })
    return Layer.merge(NodeHttpServer.layer(() => server, listen), Layer.succeed(HttpFrontDoor, door))
  }))
