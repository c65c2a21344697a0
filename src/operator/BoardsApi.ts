import { HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { NotFoundText, UnauthorizedText, UnavailableText } from "../observability/apiErrors.ts"

/*
 * The boards' routes on the scheduler port: `GET /boards.json` (every board, whether it is usable and why not,
 * its quarantine standing, and the latest quarantine records with their evidence) and the operator's
 * `POST /boards/{node}/release`, gated by the trace API's bearer token.
 */

const IsoString = Schema.String.annotations({ format: "date-time" })

export const BoardJson = Schema.Struct({
  node: Schema.String,
  pool: Schema.String,
  cluster: Schema.String.annotations({ description: "the cluster of the board's pool (`default`: the one of KUBECONFIG)" }),
  slots: Schema.Number,
  busy: Schema.Number.annotations({ description: "runner pods on it that hold a slot" }),
  usable: Schema.Boolean,
  why_unusable: Schema.NullOr(Schema.String).annotations({
    description: "not ready (False|Unknown), cordoned, taint key=value:Effect, or quarantined until <time>"
  }),
  ready: Schema.String,
  standing: Schema.NullOr(Schema.Literal("quarantined", "trial", "healthy")).annotations({
    description: "null for a board never quarantined"
  }),
  quarantined_until: Schema.NullOr(IsoString)
}).annotations({ identifier: "Board" })

export const BoardEventJson = Schema.Struct({
  id: Schema.Number,
  node: Schema.String,
  pool: Schema.String,
  kind: Schema.Literal("quarantined", "released", "trial_passed", "operator_release"),
  at: IsoString,
  probation_seconds: Schema.NullOr(Schema.Number),
  evidence: Schema.Array(Schema.Struct({ pod_name: Schema.String, reason: Schema.String, at: IsoString }))
}).annotations({ identifier: "BoardEvent" })

export const BoardPoolJson = Schema.Struct({
  pool: Schema.String,
  cluster: Schema.String,
  total: Schema.Number,
  usable: Schema.Number,
  busy: Schema.Number,
  free: Schema.Number
})

export const BoardsJson = Schema.Struct({
  generated_at: IsoString,
  capacity_error: Schema.NullOr(Schema.String),
  pools: Schema.Array(BoardPoolJson),
  boards: Schema.Array(BoardJson),
  events: Schema.Array(BoardEventJson).annotations({ description: "the latest quarantine records, newest first" })
}).annotations({ identifier: "Boards" })

export const ReleasedJson = Schema.Struct({ node: Schema.String, pool: Schema.String, standing: Schema.Literal("healthy"), event_id: Schema.Number })

/** `Authorization: Bearer <TRACE_API_SECRET>`; 503 while it is unset. */
export class OperatorAuth extends HttpApiMiddleware.Tag<OperatorAuth>()("riscv-runner/OperatorAuth", {
  failure: Schema.Union(UnauthorizedText, UnavailableText)
}) {}

/** A Kubernetes node name: a DNS subdomain. */
const NodeName = Schema.String.pipe(
  Schema.maxLength(253),
  Schema.pattern(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, { message: () => "Invalid node name" })
)

export const BoardsGroup = HttpApiGroup.make("boards")
  .add(HttpApiEndpoint.get("boards", "/boards.json").addSuccess(BoardsJson)
    .annotate(OpenApi.Description, "Every board: slots, busy, whether it is usable and why not, its quarantine standing; and the latest quarantine records."))
  .add(HttpApiEndpoint.post("release", "/boards/:node/release")
    .setPath(Schema.Struct({ node: NodeName }))
    .addSuccess(ReleasedJson)
    .addError(NotFoundText)
    .middleware(OperatorAuth)
    .annotate(OpenApi.Description, "Releases a quarantined (or on trial) board at once: it is trusted again, and the release is recorded. `404` when the board is neither."))
