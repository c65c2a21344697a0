import { Context, type Effect, type Scope } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"

/**
 * Takes a request before the HTTP framework sees it, or not: true when it answers the request itself (it then
 * owns `response`), false to leave it to the framework's router.
 */
export type FrontHandler = (request: IncomingMessage, response: ServerResponse) => boolean

/**
 * The served port's `node:http` requests, before `@effect/platform`'s server makes each one a fiber, a Scope and a
 * span. A program puts a handler here for its one hot route (the webhook's `POST /`) and leaves every other
 * request to its HttpApi router. The implementation is the Node server the port runs on (`layers/http/`).
 */
export class HttpFrontDoor extends Context.Tag("riscv-runner/HttpFrontDoor")<HttpFrontDoor, {
  /** puts `handler` in front for as long as the scope is open; one handler at a time */
  readonly open: (handler: FrontHandler) => Effect.Effect<void, never, Scope.Scope>
}>() {}
