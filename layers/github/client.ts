import { Effect, Redacted, Schema } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import {
  type GithubError,
  type GithubHttpError,
  GithubInstallation,
  GithubJob,
  type GithubOperation,
  GithubRun,
  GithubRunner,
  type GithubShape,
  type InstallationRef,
  type JitConfigRequest,
  type JitRunner,
  type ListRunnersOptions
} from "../../src/services/Github.ts"
import type { CallCounter } from "./callCounter.ts"
import { type ClientCalls, makeClientCalls, readable, splitRepo } from "./clientCalls.ts"
import { endpoint } from "./endpoints.ts"
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

const jitOf = (operation: GithubOperation) => (answer: GithubAnswer) =>
  readable(operation, JitAnswer)(answer.data).pipe(
    Effect.map((d): JitRunner => ({ runnerId: d.runner.id, jitConfig: Redacted.make(d.encoded_jit_config) }))
  )

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

const service = (calls: ClientCalls, counter: CallCounter) =>
  Effect.gen(function*() {
    const groups = yield* makeRunnerGroupCache()
    const { asInstallation, listAll } = calls

    const findGroup = (ref: InstallationRef, org: string, groupName: string) =>
      listAll(
        "listRunnerGroups",
        ref,
        endpoint("listRunnerGroups", { org }),
        (data) => readable("listRunnerGroups", RunnerGroups)(data).pipe(Effect.map((d) => d.runner_groups)),
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
        Effect.flatMap((a) => readable("createRunnerGroup", Schema.Struct({ id: Schema.Number }))(a.data)),
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

    const ensureRunnerGroup = Effect.fn("Github.ensureRunnerGroup")(
      function*(ref: InstallationRef, org: string, groupName: string) {
        const cached = yield* groups.get(org, groupName)
        if (cached !== undefined) return cached
        const id = (yield* findGroup(ref, org, groupName)) ?? (yield* createGroup(ref, org, groupName))
        yield* groups.set(org, groupName, id)
        return id
      }
    )

    const jitBody = (request: JitConfigRequest, groupId: number) => ({
      name: request.runnerName,
      runner_group_id: groupId,
      labels: [...request.labels],
      work_folder: "../../../work"
    })

    const createJitConfigOrg = Effect.fn("Github.createJitConfigOrg")(
      function*(ref: InstallationRef, org: string, groupId: number, request: JitConfigRequest) {
        const answer = yield* asInstallation(
          "createJitConfigOrg",
          ref,
          endpoint("createJitConfigOrg", { org }, jitBody(request, groupId)),
          [201]
        ).pipe(Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId)))
        return yield* jitOf("createJitConfigOrg")(answer)
      }
    )

    const createJitConfigRepo = Effect.fn("Github.createJitConfigRepo")(
      function*(ref: InstallationRef, repoFullName: string, request: JitConfigRequest) {
        const { owner, repo } = yield* splitRepo("createJitConfigRepo", repoFullName)
        // Repository runners live in the default group, whose id is always 1.
        const answer = yield* asInstallation(
          "createJitConfigRepo",
          ref,
          endpoint("createJitConfigRepo", { owner, repo }, jitBody(request, 1)),
          [201]
        )
        return yield* jitOf("createJitConfigRepo")(answer)
      }
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
    const poll = <A, I>(operation: "getJob" | "getRun", idParam: "job_id" | "run_id", schema: Schema.Schema<A, I>) =>
      Effect.fn(`Github.${operation}`)(function*(ref: InstallationRef, repoFullName: string, id: number) {
        const { owner, repo } = yield* splitRepo(operation, repoFullName)
        return yield* calls.conditionalGet(
          operation,
          ref,
          endpoint(operation, { owner, repo, [idParam]: id }),
          `${operation === "getJob" ? "job" : "run"} ${ref.installationId} ${repoFullName.toLowerCase()} ${id}`,
          readable(operation, schema)
        )
      })

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
      rateLimit: calls.rateLimit,
      callCounts: counter.snapshot
    } satisfies GithubShape
  })

/** The Github service over `transport`. */
export const makeGithubClient = (options: GithubClientOptions): Effect.Effect<GithubShape> =>
  Effect.flatMap(makeClientCalls(options.transport, options.appIds), (calls) => service(calls, options.counter))
