import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, ParseResult, Schema } from "effect"
import { FaultPatch } from "./faults.ts"
import { SimWorld } from "./worldApi.ts"

/*
 * The simulation's control API (`SIM_PORT`, default 8082):
 *   POST /sim/jobs    {"owner":"acme","ownerType":"Organization","repo":"acme/app","labels":["ubuntu-24.04-riscv"],
 *                      "durationSeconds":30,"count":1}  -> {"jobIds":[...]}; GitHub then sends the queued webhooks
 *   GET  /sim/state   nodes, pods, registered runners and jobs as GitHub sees them
 *   GET  /sim/faults  the fault settings;  POST /sim/faults  changes some of them (see faults.ts)
 */

export const JobRequestBody = Schema.Struct({
  owner: Schema.String,
  ownerType: Schema.optional(Schema.Literal("Organization", "User")),
  repo: Schema.optional(Schema.String),
  labels: Schema.optional(Schema.Array(Schema.String)),
  durationSeconds: Schema.optional(Schema.Number),
  count: Schema.optional(Schema.Number)
})

const badRequest = (message: string) => HttpServerResponse.unsafeJson({ error: message }, { status: 400 })

/** Reads a JSON body by a Schema; a body that does not fit answers 400 with the reason. */
const body = <A, I>(schema: Schema.Schema<A, I>) =>
  HttpServerRequest.schemaBodyJson(schema, { onExcessProperty: "error" }).pipe(
    Effect.mapError((e) =>
      e._tag === "ParseError" ? ParseResult.TreeFormatter.formatErrorSync(e) : "the body must be JSON"
    )
  )

const usage = [
  "riscv-runner simulation control API",
  "  POST /sim/jobs    {\"owner\":\"acme\",\"repo\":\"acme/app\",\"durationSeconds\":30,\"count\":10}",
  "  GET  /sim/state   nodes, pods, runners and jobs as GitHub sees them",
  "  GET  /sim/faults  current faults",
  "  POST /sim/faults  {\"githubErrors\":0.1,\"dropWebhooks\":0.05,...} or {\"off\":true}",
  ""
].join("\n")

export const simControlRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/", HttpServerResponse.text(usage)),
  HttpRouter.get("/health", HttpServerResponse.text("ok")),
  HttpRouter.post(
    "/sim/jobs",
    Effect.gen(function*() {
      const world = yield* SimWorld
      const request = yield* body(JobRequestBody)
      const ids = yield* world.submitJobs(request).pipe(Effect.mapError((e) => e.message))
      return HttpServerResponse.unsafeJson({ jobIds: ids })
    }).pipe(Effect.catchAll(badRequest))
  ),
  HttpRouter.get("/sim/state", Effect.flatMap(SimWorld, (w) => w.state).pipe(Effect.map((s) => HttpServerResponse.unsafeJson(s)))),
  HttpRouter.get("/sim/faults", Effect.flatMap(SimWorld, (w) => w.faults).pipe(Effect.map((f) => HttpServerResponse.unsafeJson(f)))),
  HttpRouter.post(
    "/sim/faults",
    Effect.gen(function*() {
      const world = yield* SimWorld
      const patch = yield* body(FaultPatch)
      const faults = yield* world.setFaults(patch)
      return HttpServerResponse.unsafeJson(faults)
    }).pipe(Effect.catchAll(badRequest))
  )
)

/** Serves the control API on the HttpServer the caller provides (main.ts picks SIM_PORT). */
export const SimControlServer = HttpServer.serve(simControlRouter)
