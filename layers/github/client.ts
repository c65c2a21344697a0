import { Effect, Either, Redacted, Schema } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import {
  type GithubError,
  type GithubHttpError,
  GithubInstallation,
  GithubJob,
  type GithubOperation,
  GithubRun,
  GithubRunJob,
  GithubRunner,
  GithubRunSummary,
  HookDelivery,
  type GithubShape,
  type InstallationRef,
  type JitConfigRequest,
  type JitRunner,
  type ListRunnersOptions,
  type WriteWait
} from "../../src/services/Github.ts"
import { leanSpan } from "../../src/services/leanSpan.ts"
import type { CallCounter } from "./callCounter.ts"
import { type ClientCalls, type Endpoint, makeClientCalls, nextLink, readable, splitRepo } from "./clientCalls.ts"
import { endpoint } from "./endpoints.ts"
import { transportError } from "./statusErrors.ts"
import { makeRunnerGroupCache } from "./runnerGroupCache.ts"
import type { GithubAnswer, GithubTransport } from "./transport.ts"

/*
 * The Github service, once, over any transport: `GithubLive` runs it on Octokit, `GithubMemory` on the in-memory
 * GitHub server. What a call costs, how a failure is reported, what is cached and for how long is decided here and
 * only here, so both layers spend and count the same calls.
 */

export interface GithubClientOptions {
  readonly transport: GithubTransport
  /** the transport's attempt counter, reported as `callCounts` */
  readonly counter: CallCounter
  /** the ids of the two apps (org app for `Organization`, personal app for `User`), for cache keys and logs */
  readonly appIds: Readonly<Record<EntityType, number>>
}

const RunnerGroups = Schema.Struct({
  runner_groups: Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))
})
const Runners = Schema.Struct({ runners: Schema.Array(GithubRunner) })
const JitAnswer = Schema.Struct({ runner: Schema.Struct({ id: Schema.Number }), encoded_jit_config: Schema.String })
// built once: a schema made per call is compiled into a parser per call
const CreatedGroup = Schema.Struct({ id: Schema.Number })

const Deliveries = Schema.Array(HookDelivery)
const QueuedRuns = Schema.Struct({ workflow_runs: Schema.Array(GithubRunSummary) })
const RunJobs = Schema.Struct({ jobs: Schema.Array(GithubRunJob) })

// one decoder per operation, made here: every runner provisioned decodes one of these answers, in one step
const jitOf = (operation: GithubOperation) => {
  const decode = Schema.decodeUnknownEither(JitAnswer)
  return (answer: GithubAnswer): Effect.Effect<JitRunner, GithubError> => {
    const d = decode(answer.data)
    return Either.isRight(d)
      ? Effect.succeed({ runnerId: d.right.runner.id, jitConfig: Redacted.make(d.right.encoded_jit_config) })
      : Effect.fail(transportError(operation, "the answer did not have the expected shape"))
  }
}
// a burst's first runner of each organisation lists its groups and may create ours: decoders made once
const runnerGroupsOf = readable("listRunnerGroups", RunnerGroups)
const createdGroupOf = readable("createRunnerGroup", CreatedGroup)
const jitOfOrg = jitOf("createJitConfigOrg")
const jitOfRepo = jitOf("createJitConfigRepo")

const runnersOf = (operation: GithubOperation, options: ListRunnersOptions | undefined) => (data: unknown) =>
  readable(operation, Runners)(data).pipe(
    Effect.map((d) => d.runners),
    Effect.map((rs) => {
      const prefix = options?.namePrefix
      return prefix === undefined ? rs : rs.filter((r) => r.name.startsWith(prefix))
    })
  )

// 204 removed; 404 already gone, which is what we wanted.
const deleted = (effect: Effect.Effect<GithubAnswer, GithubError>) =>
  effect.pipe(Effect.asVoid, Effect.catchTag("GithubNotFound", () => Effect.void))

/** A transport that does not space writes: a write could always start now. */
const unspaced: WriteWait = { waitMs: 0, gapMs: 0, startNow: Number.POSITIVE_INFINITY }

const service = (calls: ClientCalls, counter: CallCounter, transport: GithubTransport) =>
  Effect.gen(function*() {
    const spacedWait = transport.writeWait
    const writeWait = (ref: InstallationRef): Effect.Effect<WriteWait> =>
      spacedWait === undefined ? Effect.succeed(unspaced) : spacedWait(ref.installationId)
    const groups = yield* makeRunnerGroupCache()
    const { asInstallation, listAll } = calls

    const findGroup = (ref: InstallationRef, org: string, groupName: string) =>
      listAll(
        "listRunnerGroups",
        ref,
        endpoint("listRunnerGroups", { org }),
        (data) => Effect.map(runnerGroupsOf(data), (d) => d.runner_groups),
        (items) => items.some((g) => g.name === groupName)
      ).pipe(Effect.map((all) => all.find((g) => g.name === groupName)?.id))

    const createGroup = (ref: InstallationRef, org: string, groupName: string) =>
      asInstallation(
        "createRunnerGroup",
        ref,
        endpoint("createRunnerGroup", { org }, {
          name: groupName,
          visibility: "all",
          allows_public_repositories: true
        }),
        [201]
      ).pipe(
        Effect.flatMap((a) => createdGroupOf(a.data)),
        Effect.map((d) => d.id),
        // Another scheduler created it between our listing and our create: list again.
        Effect.catchIf(
          (e): e is GithubHttpError => e._tag === "GithubHttpError" && (e.status === 409 || e.status === 422),
          (e) =>
            findGroup(ref, org, groupName).pipe(
              Effect.flatMap((id) => (id === undefined ? Effect.fail(e) : Effect.succeed(id)))
            )
        )
      )

    // The three calls of every provisioning are untraced: Effect.fn takes two stack traces a call, and a burst makes
    // hundreds of them. The group's id is nearly always cached: only a look-up (a listing, maybe a create) has a
    // span, since a span costs about a tenth of a millisecond here and a cache hit a few hundredths.
    const lookUpRunnerGroup = Effect.fnUntraced(
      function*(ref: InstallationRef, org: string, groupName: string) {
        const id = (yield* findGroup(ref, org, groupName)) ?? (yield* createGroup(ref, org, groupName))
        yield* groups.set(org, groupName, id)
        return id
      },
      leanSpan("Github.ensureRunnerGroup")
    )
    const ensureRunnerGroup = (ref: InstallationRef, org: string, groupName: string) =>
      Effect.clockWith((clock) => {
        const cached = groups.peek(org, groupName, clock.unsafeCurrentTimeMillis())
        return cached !== undefined ? Effect.succeed(cached) : lookUpRunnerGroup(ref, org, groupName)
      })

    const jitBody = (request: JitConfigRequest, groupId: number) => ({
      name: request.runnerName,
      runner_group_id: groupId,
      labels: [...request.labels],
      work_folder: "../../../work"
    })

    // once per runner of an organisation: plain steps, no generator
    const createJitConfigOrg = (ref: InstallationRef, org: string, groupId: number, request: JitConfigRequest) =>
      Effect.suspend(() =>
        asInstallation(
          "createJitConfigOrg",
          ref,
          endpoint("createJitConfigOrg", { org }, jitBody(request, groupId)),
          [201]
        )
      ).pipe(
        Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId)),
        Effect.flatMap(jitOfOrg),
        leanSpan("Github.createJitConfigOrg")
      )

    const createJitConfigRepo = Effect.fnUntraced(
      function*(ref: InstallationRef, repoFullName: string, request: JitConfigRequest) {
        const { owner, repo } = yield* splitRepo("createJitConfigRepo", repoFullName)
        // Repository runners live in the default group, whose id is always 1.
        const answer = yield* asInstallation(
          "createJitConfigRepo",
          ref,
          endpoint("createJitConfigRepo", { owner, repo }, jitBody(request, 1)),
          [201]
        )
        return yield* jitOfRepo(answer)
      },
      leanSpan("Github.createJitConfigRepo")
    )

    const listRunnersOrgGroup = Effect.fn("Github.listRunnersOrgGroup")(
      function*(ref: InstallationRef, org: string, groupId: number, options?: ListRunnersOptions) {
        return yield* listAll(
          "listRunnersOrgGroup",
          ref,
          endpoint("listRunnersOrgGroup", { org, runner_group_id: groupId }),
          runnersOf("listRunnersOrgGroup", options)
        ).pipe(Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId)))
      }
    )

    const listRunnersRepo = Effect.fn("Github.listRunnersRepo")(
      function*(ref: InstallationRef, repoFullName: string, options?: ListRunnersOptions) {
        const { owner, repo } = yield* splitRepo("listRunnersRepo", repoFullName)
        return yield* listAll(
          "listRunnersRepo",
          ref,
          endpoint("listRunnersRepo", { owner, repo }),
          runnersOf("listRunnersRepo", options)
        )
      }
    )

    const deleteRunnerOrg = Effect.fn("Github.deleteRunnerOrg")(
      function*(ref: InstallationRef, org: string, runnerId: number) {
        yield* deleted(
          asInstallation("deleteRunnerOrg", ref, endpoint("deleteRunnerOrg", { org, runner_id: runnerId }), [204])
        )
      }
    )

    const deleteRunnerRepo = Effect.fn("Github.deleteRunnerRepo")(
      function*(ref: InstallationRef, repoFullName: string, runnerId: number) {
        const { owner, repo } = yield* splitRepo("deleteRunnerRepo", repoFullName)
        yield* deleted(
          asInstallation(
            "deleteRunnerRepo",
            ref,
            endpoint("deleteRunnerRepo", { owner, repo, runner_id: runnerId }),
            [204]
          )
        )
      }
    )

    /** A job or run of a repository, polled conditionally: an unchanged one costs no budget. */
    const poll = <A, I>(operation: "getJob" | "getRun", idParam: "job_id" | "run_id", schema: Schema.Schema<A, I>) => {
      const decode = readable(operation, schema)
      const span = leanSpan(`Github.${operation}`)
      // every cycle polls up to 50 stale jobs, two calls each: plain steps inside the span (no generator, no stack
      // traces), and the answer's decoder made once per operation
      return (ref: InstallationRef, repoFullName: string, id: number) =>
        Effect.flatMap(splitRepo(operation, repoFullName), ({ owner, repo }) =>
          calls.conditionalGet(
            operation,
            ref,
            endpoint(operation, { owner, repo, [idParam]: id }),
            `${operation === "getJob" ? "job" : "run"} ${ref.installationId} ${repoFullName.toLowerCase()} ${id}`,
            decode
          )).pipe(span)
    }

    const getInstallation = Effect.fn("Github.getInstallation")(
      function*(installationId: number, entityType: EntityType) {
        const answer = yield* calls.asApp(
          "getInstallation",
          entityType,
          endpoint("getInstallation", { installation_id: installationId }),
          [200]
        )
        return yield* readable("getInstallation", GithubInstallation)(answer.data)
      }
    )

    // The delivery log is the app's own, read with its JWT: it spends no installation's budget. GitHub pages it
    // with an opaque cursor in the Link header; a listing longer than 1000 pages is a loop, not a real log.
    const listHookDeliveries = Effect.fn("Github.listHookDeliveries")(
      function*(app: EntityType, stopAt: (delivery: HookDelivery) => boolean) {
        const all: Array<HookDelivery> = []
        let request: Endpoint = { ...endpoint("listHookDeliveries", {}), query: { per_page: 100 } }
        for (let page = 1;; page++) {
          const answer = yield* calls.asApp("listHookDeliveries", app, request, [200])
          const items = yield* readable("listHookDeliveries", Deliveries)(answer.data)
          all.push(...items)
          const next = nextLink(answer.headers)
          if (next === undefined || items.length === 0 || items.some(stopAt) || page >= 1000) return all as ReadonlyArray<HookDelivery>
          request = { method: "GET", path: next }
        }
      }
    )

    const redeliverHookDelivery = Effect.fn("Github.redeliverHookDelivery")(
      function*(app: EntityType, deliveryId: number) {
        yield* calls.asApp(
          "redeliverHookDelivery",
          app,
          endpoint("redeliverHookDelivery", { delivery_id: deliveryId }),
          [202]
        )
      }
    )

    const listQueuedRuns = Effect.fn("Github.listQueuedRuns")(function*(ref: InstallationRef, repoFullName: string) {
      const { owner, repo } = yield* splitRepo("listQueuedRuns", repoFullName)
      return yield* calls.conditionalGet(
        "listQueuedRuns",
        ref,
        { ...endpoint("listQueuedRuns", { owner, repo }), query: { status: "queued", per_page: 100 } },
        `queued runs ${ref.installationId} ${repoFullName.toLowerCase()}`,
        (data) => readable("listQueuedRuns", QueuedRuns)(data).pipe(Effect.map((d) => d.workflow_runs))
      )
    })

    const listRunJobs = Effect.fn("Github.listRunJobs")(
      function*(ref: InstallationRef, repoFullName: string, runId: number) {
        const { owner, repo } = yield* splitRepo("listRunJobs", repoFullName)
        return yield* calls.conditionalGet(
          "listRunJobs",
          ref,
          { ...endpoint("listRunJobs", { owner, repo, run_id: runId }), query: { filter: "latest", per_page: 100 } },
          `run jobs ${ref.installationId} ${repoFullName.toLowerCase()} ${runId}`,
          (data) => readable("listRunJobs", RunJobs)(data).pipe(Effect.map((d) => d.jobs))
        )
      }
    )

    return {
      installationToken: calls.installationToken,
      getInstallation,
      ensureRunnerGroup,
      createJitConfigOrg,
      createJitConfigRepo,
      listRunnersOrgGroup,
      listRunnersRepo,
      deleteRunnerOrg,
      deleteRunnerRepo,
      getJob: poll("getJob", "job_id", GithubJob),
      getRun: poll("getRun", "run_id", GithubRun),
      listHookDeliveries,
      redeliverHookDelivery,
      listQueuedRuns,
      listRunJobs,
      writeWait,
      rateLimit: calls.rateLimit,
      callCounts: counter.snapshot
    } satisfies GithubShape
  })

/** The Github service over `transport`. */
export const makeGithubClient = (options: GithubClientOptions): Effect.Effect<GithubShape> =>
  Effect.flatMap(makeClientCalls(options.transport, options.appIds), (calls) => service(calls, options.counter, options.transport))
