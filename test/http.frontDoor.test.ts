/**
 * The Node server with a front door: the handler opened on it answers the requests it takes, the router gets
 * every other one, and once the handler's scope closes the router gets them all again.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import { HttpFrontDoor } from "../src/services/HttpFrontDoor.ts"

const text = (url: string, init?: RequestInit) => Effect.promise(() => fetch(url, init).then(async (r) => `${r.status} ${await r.text()}`))

describe("NodeHttpServerWithFrontDoor", () => {
  it.live("the front handler answers what it takes; the router answers the rest, and everything once the door closes", () =>
    Effect.scoped(Effect.gen(function*() {
      const router = HttpRouter.empty.pipe(
        HttpRouter.post("/", HttpServerResponse.text("router")),
        HttpRouter.get("/other", HttpServerResponse.text("router other"))
      )
      const built = yield* Layer.build(HttpServer.serve(router).pipe(Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))))
      const address = Context.get(built, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      const base = `http://127.0.0.1:${address.port}`
      const door = Context.get(built, HttpFrontDoor)

      expect(yield* text(`${base}/`, { method: "POST" })).toBe("200 router")

      const scope = yield* Scope.make()
      yield* door.open((req, res) => {
        if (req.method !== "POST") return false
        req.resume()
        req.on("end", () => res.writeHead(201, { "content-type": "text/plain" }).end("front"))
        return true
      }).pipe(Scope.extend(scope))
      expect(yield* text(`${base}/`, { method: "POST", body: "x" })).toBe("201 front")
      expect(yield* text(`${base}/other`)).toBe("200 router other")

      yield* Scope.close(scope, Exit.void)
      expect(yield* text(`${base}/`, { method: "POST" })).toBe("200 router")
    })))
})
