import { Clock, Context, Duration, Effect, HashMap, HashSet, Layer, Option, Random, Redacted, Ref } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import {
  Github,
  type GithubCallCounts,
  type GithubError,
  GithubHttpError,
  type GithubInstallation,
  type GithubJob,
  GithubNotFound,
  type GithubOperation,
  type GithubRun,
  type GithubRunner,
  type GithubShape,
  type InstallationRef,
  type JitConfigRequest,
  type JitRunner,
  type ListRunnersOptions,
  type RateLimit
} from "../../src/services/Github.ts"
import { makeCallCounter } from "./callCounter.ts"
import { makeRunnerGroupCache } from "./runnerGroupCache.ts"
import { errorFromStatus, guardSpentBudget, type HeaderMap, transportError } from "./statusErrors.ts"
import { makeTokenCache } from "./tokenCache.ts"

/*
 * An in-memory GitHub, in two halves kept apart on purpose:
 * - the "server" below holds GitHub's state (installations, runner groups, runners, jobs, runs, tokens, budgets)
 *   and answers one call at a time with a status, as the REST API would;
 * - the client (the Github service) is built like the live layer: token cache, runner-group cache, conditional
 *   polls, fail-fast on a spent budget, one call counted per page.
 * So call counts and rate-limit spending match what the live layer would cost against real GitHub. Everything is
 * a Ref and Effect's Clock and Random, so TestClock and a seeded Random make runs repeatable.
 */

// --- public types of the control handle --------------------------------------------------------------------------

/** Where a runner is registered: in an org's runner group, or on one repository (`owner/name`). */
export type MemoryRunnerScope =
  | { readonly _tag: "Org"; readonly org: string; readonly groupId: number }
  | { readonly _tag: "Repo"; readonly repo: string }

export interface MemoryRunner extends GithubRunner {
  readonly scope: MemoryRunnerScope
  readonly labels: ReadonlyArray<string>
  /** a runner stuck busy never finishes its job: deletes keep answering 422 */
  readonly stuckBusy: boolean
}

export interface MemoryJob extends GithubJob {
  readonly id: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
}

export interface MemoryRun extends GithubRun {
  readonly id: number
  readonly repo: string
}

export interface MemoryRunnerGroup {
  readonly org: string
  readonly id: number
  readonly name: string
  readonly visibility: string
  readonly allowsPublicRepositories: boolean
}

export interface GithubMemorySnapshot {
  readonly installations: ReadonlyArray<{ readonly installation: GithubInstallation; readonly app: EntityType }>
  readonly runnerGroups: ReadonlyArray<MemoryRunnerGroup>
  readonly runners: ReadonlyArray<MemoryRunner>
  readonly jobs: ReadonlyArray<MemoryJob>
  readonly runs: ReadonlyArray<MemoryRun>
}

/**
 * What can go wrong with a call. `Status` answers with an HTTP error (mapped exactly like a real answer: 404 →
 * GithubNotFound, 422 on a delete → GithubBusy, ...); `RateLimited` answers 403 with a spent budget (or 429 with
 * Retry-After when `retryAfterSeconds` is given); `Transport` gets no answer; `Latency` delays the call.
 */
export type GithubFault =
  | { readonly _tag: "Status"; readonly status: number; readonly message?: string }
  | { readonly _tag: "RateLimited"; readonly resetAt: Date; readonly retryAfterSeconds?: number }
  | { readonly _tag: "Transport"; readonly message?: string }
  | { readonly _tag: "Latency"; readonly duration: Duration.DurationInput }

export interface FaultOptions {
  /** how many calls the fault hits; unlimited when absent */
  readonly times?: number
  /** chance (0..1) that a matching call is hit, drawn from Effect's Random (seed it for repeatable runs) */
  readonly probability?: number
}

export interface GithubMemoryControlShape {
  // installations
  /** Installs one of our apps. `app` is the app it was installed through; by default the one serving the account type. */
  readonly addInstallation: (
    installation: GithubInstallation,
    options?: { readonly app?: EntityType }
  ) => Effect.Effect<void>
  /** Uninstalls: the installation disappears and its tokens stop working (401). */
  readonly removeInstallation: (installationId: number) => Effect.Effect<void>
  // runner groups and runners
  readonly addRunnerGroup: (org: string, name: string) => Effect.Effect<number>
  /** Registers a runner directly (no JIT), e.g. a leftover from an earlier life. */
  readonly addRunner: (
    scope: MemoryRunnerScope,
    runner: {
      readonly name: string
      readonly status?: "online" | "offline"
      readonly busy?: boolean
      readonly labels?: ReadonlyArray<string>
    }
  ) => Effect.Effect<number>
  /**
   * The runner process in a pod started with this JIT config and connected: its runner goes online. None when the
   * JIT config is unknown, its runner was deleted, or the runner was told to never register.
   */
  readonly registerRunnerFromJit: (
    jitConfig: Redacted.Redacted<string> | string
  ) => Effect.Effect<Option.Option<MemoryRunner>>
  /** That runner (by name, now or later) stays offline whatever its pod does. */
  readonly neverRegister: (runnerName: string) => Effect.Effect<void>
  readonly setRunnerStatus: (runnerName: string, status: "online" | "offline") => Effect.Effect<void>
  readonly setRunnerBusy: (runnerName: string, busy: boolean) => Effect.Effect<void>
  /** The runner is busy and stays busy: `finishRunner` leaves it, deletes answer 422. */
  readonly setRunnerStuckBusy: (runnerName: string, stuck: boolean) => Effect.Effect<void>
  /** An ephemeral runner is done with its job and removes itself (unless stuck busy). */
  readonly finishRunner: (runnerName: string) => Effect.Effect<void>
  readonly removeRunner: (runnerName: string) => Effect.Effect<void>
  // jobs and runs
  readonly createJob: (job: {
    readonly id: number
    readonly repo: string
    readonly runId: number
    readonly labels?: ReadonlyArray<string>
    readonly status?: string
    readonly conclusion?: string | null
    readonly runnerName?: string | null
  }) => Effect.Effect<void>
  readonly setJobStatus: (
    jobId: number,
    update: { readonly status: string; readonly conclusion?: string | null; readonly runnerName?: string | null }
  ) => Effect.Effect<void>
  /**
   * What GitHub does when a runner comes online: it hands the runner the oldest queued job of its scope whose
   * labels the runner carries. The job goes in_progress on the runner, which turns busy.
   */
  readonly assignQueuedJob: (runnerName: string) => Effect.Effect<Option.Option<MemoryJob>>
  /** The job ends with `conclusion`; its runner (if any) finishes and removes itself. */
  readonly completeJob: (jobId: number, conclusion: string) => Effect.Effect<void>
  readonly createRun: (run: {
    readonly id: number
    readonly repo: string
    readonly status?: string | null
    readonly conclusion?: string | null
  }) => Effect.Effect<void>
  readonly setRunStatus: (
    runId: number,
    update: { readonly status: string | null; readonly conclusion?: string | null }
  ) => Effect.Effect<void>
  // budget and faults
  /** Sets an installation's primary budget (the window then refills to `limit` at `resetAt`). */
  readonly setRateLimit: (
    installationId: number,
    budget: { readonly limit?: number; readonly remaining: number; readonly resetAt: Date }
  ) => Effect.Effect<void>
  readonly injectFault: (operation: GithubOperation, fault: GithubFault, options?: FaultOptions) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  // observation
  readonly callCounts: Effect.Effect<GithubCallCounts>
  readonly snapshot: Effect.Effect<GithubMemorySnapshot>
  /** every token and JIT config ever issued, for tests that scan logs and stores for leaked secrets */
  readonly issuedSecrets: Effect.Effect<ReadonlyArray<string>>
}

/** Drives the in-memory GitHub (the simulator's and the tests' side of it). Provided by `GithubMemory` only. */
export class GithubMemoryControl extends Context.Tag("riscv-runner/GithubMemoryControl")<
  GithubMemoryControl,
  GithubMemoryControlShape
>() {}

export interface GithubMemoryOptions {
  readonly orgAppId?: number
  readonly personalAppId?: number
  /** installation budget per hour; GitHub's default for an installation is 5000 */
  readonly rateLimit?: number
}

// --- server state ----------------------------------------------------------------------------------------------

interface RunnerRecord {
  readonly id: number
  readonly name: string
  readonly status: "online" | "offline"
  readonly busy: boolean
  readonly scope: MemoryRunnerScope
  readonly labels: ReadonlyArray<string>
  readonly stuckBusy: boolean
}

interface JobRecord {
  readonly id: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
  readonly job: GithubJob
  readonly version: number
}

interface RunRecord {
  readonly id: number
  readonly repo: string
  readonly run: GithubRun
  readonly version: number
}

interface Budget {
  readonly limit: number
  readonly remaining: number
  readonly resetAt: number
}

interface FaultRecord {
  readonly operation: GithubOperation
  readonly fault: GithubFault
  readonly remaining: number
  readonly probability: number
}

interface State {
  readonly nextId: number
  readonly installations: HashMap.HashMap<
    number,
    { readonly installation: GithubInstallation; readonly app: EntityType }
  >
  /** per lower-cased org; an org nobody touched has only GitHub's "Default" group (id 1) */
  readonly groups: HashMap.HashMap<string, ReadonlyArray<MemoryRunnerGroup>>
  readonly runners: HashMap.HashMap<number, RunnerRecord>
  readonly jits: HashMap.HashMap<string, number>
  readonly neverRegister: HashSet.HashSet<string>
  readonly jobs: HashMap.HashMap<number, JobRecord>
  readonly runs: HashMap.HashMap<number, RunRecord>
  readonly tokens: HashMap.HashMap<string, { readonly installationId: number; readonly expiresAt: number }>
  readonly budgets: HashMap.HashMap<number, Budget>
  readonly faults: ReadonlyArray<FaultRecord>
}

const emptyState: State = {
  nextId: 100,
  installations: HashMap.empty(),
  groups: HashMap.empty(),
  runners: HashMap.empty(),
  jits: HashMap.empty(),
  neverRegister: HashSet.empty(),
  jobs: HashMap.empty(),
  runs: HashMap.empty(),
  tokens: HashMap.empty(),
  budgets: HashMap.empty(),
  faults: []
}

const pageSize = 100
const tokenLifetime = Duration.toMillis(Duration.hours(1))
const budgetWindow = Duration.toMillis(Duration.hours(1))

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()
const ownerOf = (repo: string) => repo.split("/")[0] ?? ""

const groupsOf = (s: State, org: string): ReadonlyArray<MemoryRunnerGroup> =>
  Option.getOrElse(HashMap.get(s.groups, org.toLowerCase()), () => [
    { org, id: 1, name: "Default", visibility: "all", allowsPublicRepositories: false }
  ])

const runnerView = (r: RunnerRecord): MemoryRunner => ({ ...r })
const jobView = (j: JobRecord): MemoryJob => ({ id: j.id, repo: j.repo, labels: j.labels, ...j.job })

const findRunnerByName = (s: State, name: string) =>
  Option.map(HashMap.findFirst(s.runners, (r) => r.name === name), ([, r]) => r)

const updateRunner = (s: State, name: string, f: (r: RunnerRecord) => RunnerRecord | undefined): State =>
  Option.match(findRunnerByName(s, name), {
    onNone: () => s,
    onSome: (r) => {
      const next = f(r)
      return {
        ...s,
        runners: next === undefined ? HashMap.remove(s.runners, r.id) : HashMap.set(s.runners, r.id, next)
      }
    }
  })

/** Deterministic token-looking text: unique, distinctive enough for leak scans, no randomness needed. */
const secretText = (prefix: string, n: number) => `${prefix}${(n * 2654435761).toString(36)}${n.toString(36)}memory`

// --- replies -------------------------------------------------------------------------------------------------------

/** One answer of the in-memory API: a status, and a value on success. */
type Reply<A> =
  | { readonly _tag: "ok"; readonly status: number; readonly value: A }
  | { readonly _tag: "error"; readonly status: number; readonly message: string; readonly headers?: HeaderMap }

const ok = <A>(status: number, value: A): Reply<A> => ({ _tag: "ok", status, value })
const fail = (status: number, message: string, headers?: HeaderMap): Reply<never> => ({
  _tag: "error",
  status,
  message,
  ...(headers ? { headers } : {})
})
const notFound = fail(404, "Not Found")

type Caller =
  | { readonly _tag: "app"; readonly app: EntityType }
  | { readonly _tag: "installation"; readonly token: string }

type Handler<A> = (
  s: State,
  now: number,
  installation: { readonly installation: GithubInstallation; readonly app: EntityType } | undefined
) => readonly [Reply<A>, State]

const budgetHeaders = (b: Budget): HeaderMap => ({
  "x-ratelimit-limit": String(b.limit),
  "x-ratelimit-remaining": String(b.remaining),
  "x-ratelimit-used": String(b.limit - b.remaining),
  "x-ratelimit-reset": String(Math.floor(b.resetAt / 1000)),
  "x-ratelimit-resource": "core"
})

const make = (options: GithubMemoryOptions) =>
  Effect.gen(function* () {
    const appIds: Record<EntityType, number> = {
      Organization: options.orgAppId ?? 2167633,
      User: options.personalAppId ?? 3131217
    }
    const defaultLimit = options.rateLimit ?? 5000
    const state = yield* Ref.make(emptyState)
    const counter = yield* makeCallCounter
    const tokens = yield* makeTokenCache<GithubError>()
    const groups = yield* makeRunnerGroupCache()
    // The client's view of each installation's budget, from the last answer (like the live layer's headers).
    const reported = yield* Ref.make(new Map<number, RateLimit>())
    // The client's conditional-poll memory: the version of the copy it holds, per job or run.
    const kept = yield* Ref.make(new Map<string, { readonly version: number; readonly value: unknown }>())

    // ---- the server -------------------------------------------------------------------------------------------

    /** Picks the fault (if any) that hits this call, after sitting out any latency faults. */
    const faultFor = (operation: GithubOperation) =>
      Effect.gen(function* () {
        const faults = (yield* Ref.get(state)).faults.filter((f) => f.operation === operation && f.remaining > 0)
        let hit: GithubFault | undefined
        for (const f of faults) {
          if (f.probability < 1 && (yield* Random.next) >= f.probability) continue
          yield* Ref.update(state, (s) => ({
            ...s,
            faults: s.faults.map((x) => (x === f ? { ...x, remaining: x.remaining - 1 } : x)).filter((x) =>
              x.remaining > 0
            )
          }))
          if (f.fault._tag === "Latency") yield* Effect.sleep(f.fault.duration)
          else if (hit === undefined) hit = f.fault
        }
        return hit
      })

    const faultReply = (fault: GithubFault): Reply<never> => {
      switch (fault._tag) {
        case "Status":
          return fail(fault.status, fault.message ?? "injected fault")
        case "Transport":
          return fail(0, fault.message ?? "connection reset (injected)")
        case "RateLimited": {
          const reset = String(Math.floor(fault.resetAt.getTime() / 1000))
          return fault.retryAfterSeconds === undefined
            ? fail(403, "API rate limit exceeded (injected)", {
              "x-ratelimit-remaining": "0",
              "x-ratelimit-reset": reset
            })
            : fail(429, "You have exceeded a secondary rate limit (injected)", {
              "retry-after": String(fault.retryAfterSeconds),
              "x-ratelimit-reset": reset
            })
        }
        case "Latency":
          return fail(0, "unreachable")
      }
    }

    /**
     * One API call: faults, then authentication (app JWTs are always valid here; installation tokens must be
     * known, unexpired and of a live installation), then the installation's budget, then the handler. Every call
     * that gets an answer is counted with its status, and every answer but a 304 spends budget.
     */
    const serve = <A>(operation: GithubOperation, caller: Caller, handler: Handler<A>) =>
      Effect.gen(function* () {
        const fault = yield* faultFor(operation)
        if (fault !== undefined) {
          const reply = faultReply(fault)
          yield* counter.record(operation, reply.status)
          return { reply, budget: undefined }
        }
        const now = yield* Clock.currentTimeMillis
        const result = yield* Ref.modify(
          state,
          (s): readonly [{ readonly reply: Reply<A>; readonly budget: Budget | undefined }, State] => {
            if (caller._tag === "app") {
              const [reply, next] = handler(s, now, undefined)
              return [{ reply, budget: undefined }, next]
            }
            const token = Option.getOrUndefined(HashMap.get(s.tokens, caller.token))
            const installation = token && token.expiresAt > now
              ? Option.getOrUndefined(HashMap.get(s.installations, token.installationId))
              : undefined
            if (token === undefined || installation === undefined) {
              return [{ reply: fail(401, "Bad credentials"), budget: undefined }, s]
            }
            const id = token.installationId
            let budget = Option.getOrElse(
              HashMap.get(s.budgets, id),
              (): Budget => ({ limit: defaultLimit, remaining: defaultLimit, resetAt: now + budgetWindow })
            )
            if (budget.resetAt <= now) {
              budget = { limit: budget.limit, remaining: budget.limit, resetAt: now + budgetWindow }
            }
            if (budget.remaining <= 0) {
              return [
                {
                  reply: fail(403, `API rate limit exceeded for installation ID ${id}.`, budgetHeaders(budget)),
                  budget
                },
                { ...s, budgets: HashMap.set(s.budgets, id, budget) }
              ]
            }
            const [reply, next] = handler(s, now, installation)
            if (reply.status !== 304) {
              budget = { ...budget, remaining: budget.remaining - 1 }
            }
            return [{ reply, budget }, { ...next, budgets: HashMap.set(next.budgets, id, budget) }]
          }
        )
        yield* counter.record(operation, result.reply.status)
        return result
      })

    const orgAccess = (installation: { readonly installation: GithubInstallation } | undefined, org: string) =>
      installation !== undefined && installation.installation.account.type === "Organization"
      && same(installation.installation.account.login, org)
    const repoAccess = (installation: { readonly installation: GithubInstallation } | undefined, repo: string) =>
      installation !== undefined && same(installation.installation.account.login, ownerOf(repo))

    const inScope = (r: RunnerRecord, scope: MemoryRunnerScope) =>
      scope._tag === "Org"
        ? r.scope._tag === "Org" && same(r.scope.org, scope.org) && r.scope.groupId === scope.groupId
        : r.scope._tag === "Repo" && same(r.scope.repo, scope.repo)

    const addRunnerTo = (
      s: State,
      scope: MemoryRunnerScope,
      runner: Omit<RunnerRecord, "id" | "scope">
    ): readonly [RunnerRecord, State] => {
      const record: RunnerRecord = { ...runner, id: s.nextId, scope }
      return [record, { ...s, nextId: s.nextId + 1, runners: HashMap.set(s.runners, record.id, record) }]
    }

    const handlers = {
      token: (installationId: number, app: EntityType): Handler<Redacted.Redacted<string>> => (s, now) => {
        const found = Option.getOrUndefined(HashMap.get(s.installations, installationId))
        // GitHub answers 404 when the installation belongs to the other app.
        if (found === undefined || found.app !== app) return [notFound, s]
        const token = secretText("ghs_", s.nextId)
        return [
          ok(201, Redacted.make(token)),
          {
            ...s,
            nextId: s.nextId + 1,
            tokens: HashMap.set(s.tokens, token, { installationId, expiresAt: now + tokenLifetime })
          }
        ]
      },
      installation: (installationId: number, app: EntityType): Handler<GithubInstallation> => (s) => {
        const found = Option.getOrUndefined(HashMap.get(s.installations, installationId))
        return [found === undefined || found.app !== app ? notFound : ok(200, found.installation), s]
      },
      groupsPage: (
        org: string,
        page: number
      ): Handler<{ readonly items: ReadonlyArray<MemoryRunnerGroup>; readonly more: boolean }> =>
      (s, _now, inst) => {
        if (!orgAccess(inst, org)) return [notFound, s]
        const all = groupsOf(s, org)
        return [
          ok(200, {
            items: all.slice(page * pageSize, (page + 1) * pageSize),
            more: all.length > (page + 1) * pageSize
          }),
          s
        ]
      },
      createGroup: (org: string, name: string): Handler<number> => (s, _now, inst) => {
        if (!orgAccess(inst, org)) return [notFound, s]
        const all = groupsOf(s, org)
        if (all.some((g) => g.name === name)) return [fail(409, "Group name already exists"), s]
        const group: MemoryRunnerGroup = { org, id: s.nextId, name, visibility: "all", allowsPublicRepositories: true }
        return [ok(201, group.id), {
          ...s,
          nextId: s.nextId + 1,
          groups: HashMap.set(s.groups, org.toLowerCase(), [...all, group])
        }]
      },
      jit: (scope: MemoryRunnerScope, request: JitConfigRequest): Handler<JitRunner> => (s, _now, inst) => {
        if (scope._tag === "Org") {
          if (!orgAccess(inst, scope.org) || !groupsOf(s, scope.org).some((g) => g.id === scope.groupId)) {
            return [notFound, s]
          }
        } else if (!repoAccess(inst, scope.repo)) return [notFound, s]
        // Runner names are unique within an org (all groups) or a repository.
        const taken = HashMap.some(s.runners, (r) =>
          r.name === request.runnerName
          && (scope._tag === "Org"
            ? r.scope._tag === "Org" && same(r.scope.org, scope.org)
            : r.scope._tag === "Repo" && same(r.scope.repo, scope.repo)))
        if (taken) {
          return [fail(409, `Already exists - A runner with the name ${request.runnerName} already exists.`), s]
        }
        const [runner, s1] = addRunnerTo(s, scope, {
          name: request.runnerName,
          status: "offline",
          busy: false,
          labels: [...request.labels],
          stuckBusy: false
        })
        const jit = btoa(
          JSON.stringify({ runner: runner.id, name: runner.name, secret: secretText("jit_", s1.nextId) })
        )
        return [ok(201, { runnerId: runner.id, jitConfig: Redacted.make(jit) }), {
          ...s1,
          nextId: s1.nextId + 1,
          jits: HashMap.set(s1.jits, jit, runner.id)
        }]
      },
      runnersPage: (
        scope: MemoryRunnerScope,
        page: number
      ): Handler<{ readonly items: ReadonlyArray<GithubRunner>; readonly more: boolean }> =>
      (s, _now, inst) => {
        if (scope._tag === "Org") {
          if (!orgAccess(inst, scope.org) || !groupsOf(s, scope.org).some((g) => g.id === scope.groupId)) {
            return [notFound, s]
          }
        } else if (!repoAccess(inst, scope.repo)) {
          return [notFound, s]
        }
        const all = Array.from(HashMap.values(s.runners)).filter((r) => inScope(r, scope)).sort((a, b) => a.id - b.id)
        const items = all.slice(page * pageSize, (page + 1) * pageSize).map((r) => ({
          id: r.id,
          name: r.name,
          status: r.status,
          busy: r.busy
        }))
        return [ok(200, { items, more: all.length > (page + 1) * pageSize }), s]
      },
      deleteRunner: (
        where: { readonly _tag: "Org"; readonly org: string } | { readonly _tag: "Repo"; readonly repo: string },
        runnerId: number
      ): Handler<void> =>
      (s, _now, inst) => {
        if (where._tag === "Org" ? !orgAccess(inst, where.org) : !repoAccess(inst, where.repo)) return [notFound, s]
        const r = Option.getOrUndefined(HashMap.get(s.runners, runnerId))
        const matches = r !== undefined && (where._tag === "Org"
          ? r.scope._tag === "Org" && same(r.scope.org, where.org)
          : r.scope._tag === "Repo" && same(r.scope.repo, where.repo))
        if (!matches) return [notFound, s]
        if (r.busy) return [fail(422, `Bad request - Runner "${r.name}" is still running a job"`), s]
        return [ok(204, undefined), { ...s, runners: HashMap.remove(s.runners, runnerId) }]
      },
      job: (
        repo: string,
        jobId: number,
        version: number | undefined
      ): Handler<{ readonly value: GithubJob; readonly version: number }> =>
      (s, _now, inst) => {
        const j = Option.getOrUndefined(HashMap.get(s.jobs, jobId))
        if (j === undefined || !same(j.repo, repo) || !repoAccess(inst, repo)) return [notFound, s]
        return [
          j.version === version ? ok(304, { value: j.job, version }) : ok(200, { value: j.job, version: j.version }),
          s
        ]
      },
      run: (
        repo: string,
        runId: number,
        version: number | undefined
      ): Handler<{ readonly value: GithubRun; readonly version: number }> =>
      (s, _now, inst) => {
        const r = Option.getOrUndefined(HashMap.get(s.runs, runId))
        if (r === undefined || !same(r.repo, repo) || !repoAccess(inst, repo)) return [notFound, s]
        return [
          r.version === version ? ok(304, { value: r.run, version }) : ok(200, { value: r.run, version: r.version }),
          s
        ]
      }
    }

    // ---- the client (the Github service) ----------------------------------------------------------------------

    /** Turns a reply into the value or the error the live layer would produce for the same answer. */
    const settle =
      <A>(operation: GithubOperation, installationId: number | undefined) =>
      (result: { readonly reply: Reply<A>; readonly budget: Budget | undefined }) =>
        Effect.gen(function* () {
          const { reply, budget } = result
          if (installationId !== undefined && budget !== undefined) {
            const info: RateLimit = {
              limit: budget.limit,
              remaining: budget.remaining,
              used: budget.limit - budget.remaining,
              resetAt: new Date(Math.floor(budget.resetAt / 1000) * 1000)
            }
            yield* Ref.update(reported, (m) => new Map(m).set(installationId, info))
          }
          if (reply._tag === "ok") return reply.value
          if (reply.status === 0) return yield* transportError(operation, reply.message)
          return yield* errorFromStatus(operation, reply.status, reply.message, reply.headers)
        })

    const appKey = (ref: InstallationRef) => `${ref.installationId}/${appIds[ref.entityType]}`

    const installationToken = Effect.fn("Github.installationToken")(function* (ref: InstallationRef) {
      return yield* tokens.get(
        appKey(ref),
        serve(
          "installationToken",
          { _tag: "app", app: ref.entityType },
          handlers.token(ref.installationId, ref.entityType)
        ).pipe(
          Effect.flatMap(settle("installationToken", undefined)),
          Effect.tap(() =>
            Effect.logDebug("fetched an installation token").pipe(
              Effect.annotateLogs({ installationId: ref.installationId, appId: appIds[ref.entityType] })
            )
          )
        )
      )
    })

    /** An installation-scoped call, like the live layer's: spent budget fails fast; a 401 drops the token. */
    const authed = <A>(operation: GithubOperation, ref: InstallationRef, handler: Handler<A>) =>
      Effect.gen(function* () {
        yield* guardSpentBudget(reported, ref.installationId, operation)
        const token = yield* installationToken(ref)
        return yield* serve(operation, { _tag: "installation", token: Redacted.value(token) }, handler).pipe(
          Effect.flatMap(settle(operation, ref.installationId)),
          Effect.tapError((
            e
          ) => (e._tag === "GithubHttpError" && e.status === 401 ? tokens.invalidate(appKey(ref)) : Effect.void))
        )
      })

    const checkRepo = (operation: GithubOperation, repo: string) => {
      const parts = repo.split("/")
      return parts.length === 2 && parts[0] && parts[1] ? Effect.void : Effect.fail(
        new GithubNotFound({ operation, message: `${operation}: "${repo}" is not an owner/name repository` })
      )
    }

    const pages = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      page: (n: number) => Handler<{ readonly items: ReadonlyArray<A>; readonly more: boolean }>,
      stopWhen: (items: ReadonlyArray<A>) => boolean = () => false
    ) =>
      Effect.gen(function* () {
        const all: Array<A> = []
        for (let n = 0;; n++) {
          const { items, more } = yield* authed(operation, ref, page(n))
          all.push(...items)
          if (!more || stopWhen(items)) return all
        }
      })

    const findGroup = (ref: InstallationRef, org: string, groupName: string) =>
      pages("listRunnerGroups", ref, (n) =>
        handlers.groupsPage(org, n), (items) =>
        items.some((g) =>
          g.name === groupName
        )).pipe(
          Effect.map((all) =>
            all.find((g) => g.name === groupName)?.id
          )
        )

    const ensureRunnerGroup = Effect.fn("Github.ensureRunnerGroup")(
      function* (ref: InstallationRef, org: string, groupName: string) {
        const cached = yield* groups.get(org, groupName)
        if (cached !== undefined) return cached
        const found = yield* findGroup(ref, org, groupName)
        const id = found ?? (yield* authed("createRunnerGroup", ref, handlers.createGroup(org, groupName)).pipe(
          Effect.catchIf(
            (e): e is GithubHttpError => e._tag === "GithubHttpError" && (e.status === 409 || e.status === 422),
            (e) =>
              findGroup(ref, org, groupName).pipe(
                Effect.flatMap((again) => (again === undefined ? Effect.fail(e) : Effect.succeed(again)))
              )
          )
        ))
        yield* groups.set(org, groupName, id)
        return id
      }
    )

    const createJitConfigOrg = Effect.fn("Github.createJitConfigOrg")(
      function* (ref: InstallationRef, org: string, groupId: number, request: JitConfigRequest) {
        return yield* authed("createJitConfigOrg", ref, handlers.jit({ _tag: "Org", org, groupId }, request)).pipe(
          Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId))
        )
      }
    )

    const createJitConfigRepo = Effect.fn("Github.createJitConfigRepo")(
      function* (ref: InstallationRef, repo: string, request: JitConfigRequest) {
        yield* checkRepo("createJitConfigRepo", repo)
        return yield* authed("createJitConfigRepo", ref, handlers.jit({ _tag: "Repo", repo }, request))
      }
    )

    const byPrefix = (options: ListRunnersOptions | undefined) => (runners: ReadonlyArray<GithubRunner>) =>
      options?.namePrefix === undefined ? runners : runners.filter((r) => r.name.startsWith(options.namePrefix!))

    const listRunnersOrgGroup = Effect.fn("Github.listRunnersOrgGroup")(
      function* (ref: InstallationRef, org: string, groupId: number, options?: ListRunnersOptions) {
        return yield* pages("listRunnersOrgGroup", ref, (n) => handlers.runnersPage({ _tag: "Org", org, groupId }, n))
          .pipe(
            Effect.map(byPrefix(options)),
            Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId))
          )
      }
    )

    const listRunnersRepo = Effect.fn("Github.listRunnersRepo")(
      function* (ref: InstallationRef, repo: string, options?: ListRunnersOptions) {
        yield* checkRepo("listRunnersRepo", repo)
        return yield* pages("listRunnersRepo", ref, (n) => handlers.runnersPage({ _tag: "Repo", repo }, n)).pipe(
          Effect.map(byPrefix(options))
        )
      }
    )

    const deleteRunnerOrg = Effect.fn("Github.deleteRunnerOrg")(
      function* (ref: InstallationRef, org: string, runnerId: number) {
        yield* authed("deleteRunnerOrg", ref, handlers.deleteRunner({ _tag: "Org", org }, runnerId)).pipe(
          Effect.catchTag("GithubNotFound", () => Effect.void)
        )
      }
    )

    const deleteRunnerRepo = Effect.fn("Github.deleteRunnerRepo")(
      function* (ref: InstallationRef, repo: string, runnerId: number) {
        yield* checkRepo("deleteRunnerRepo", repo)
        yield* authed("deleteRunnerRepo", ref, handlers.deleteRunner({ _tag: "Repo", repo }, runnerId)).pipe(
          Effect.catchTag("GithubNotFound", () => Effect.void)
        )
      }
    )

    /** The conditional poll: the client says which version it holds; an unchanged one answers 304 for free. */
    const conditional = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      key: string,
      handler: (version: number | undefined) => Handler<{ readonly value: A; readonly version: number }>
    ) =>
      Effect.gen(function* () {
        const held = (yield* Ref.get(kept)).get(key)
        const answer = yield* authed(operation, ref, handler(held?.version))
        if (answer.version !== held?.version) {
          yield* Ref.update(kept, (m) => new Map(m).set(key, { version: answer.version, value: answer.value }))
        }
        return answer.value
      })

    const getJob = Effect.fn("Github.getJob")(function* (ref: InstallationRef, repo: string, jobId: number) {
      yield* checkRepo("getJob", repo)
      return yield* conditional(
        "getJob",
        ref,
        `job ${ref.installationId} ${repo.toLowerCase()} ${jobId}`,
        (v) => handlers.job(repo, jobId, v)
      )
    })

    const getRun = Effect.fn("Github.getRun")(function* (ref: InstallationRef, repo: string, runId: number) {
      yield* checkRepo("getRun", repo)
      return yield* conditional(
        "getRun",
        ref,
        `run ${ref.installationId} ${repo.toLowerCase()} ${runId}`,
        (v) => handlers.run(repo, runId, v)
      )
    })

    const getInstallation = Effect.fn("Github.getInstallation")(
      function* (installationId: number, entityType: EntityType) {
        return yield* serve(
          "getInstallation",
          { _tag: "app", app: entityType },
          handlers.installation(installationId, entityType)
        ).pipe(
          Effect.flatMap(settle("getInstallation", undefined))
        )
      }
    )

    const service: GithubShape = {
      installationToken,
      getInstallation,
      ensureRunnerGroup,
      createJitConfigOrg,
      createJitConfigRepo,
      listRunnersOrgGroup,
      listRunnersRepo,
      deleteRunnerOrg,
      deleteRunnerRepo,
      getJob,
      getRun,
      rateLimit: (installationId) =>
        Ref.get(reported).pipe(Effect.map((m) => Option.fromNullable(m.get(installationId)))),
      callCounts: counter.snapshot
    }

    // ---- the control handle -----------------------------------------------------------------------------------

    const update = (f: (s: State) => State) => Ref.update(state, f)

    const bumpJob = (s: State, jobId: number, f: (j: JobRecord) => JobRecord): State =>
      Option.match(HashMap.get(s.jobs, jobId), {
        onNone: () => s,
        onSome: (j) => ({
          ...s,
          nextId: s.nextId + 1,
          jobs: HashMap.set(s.jobs, jobId, { ...f(j), version: s.nextId })
        })
      })

    const finish = (s: State, runnerName: string): State =>
      updateRunner(s, runnerName, (r) => (r.stuckBusy ? r : undefined))

    const control: GithubMemoryControlShape = {
      addInstallation: (installation, opts) =>
        update((s) => ({
          ...s,
          installations: HashMap.set(s.installations, installation.id, {
            installation,
            app: opts?.app ?? (installation.account.type === "User" ? "User" : "Organization")
          })
        })),
      removeInstallation: (installationId) =>
        update((s) => ({
          ...s,
          installations: HashMap.remove(s.installations, installationId),
          // Revoked, not forgotten: `issuedSecrets` still lists them for leak scans.
          tokens: HashMap.map(s.tokens, (t) => (t.installationId === installationId ? { ...t, expiresAt: 0 } : t))
        })),
      addRunnerGroup: (org, name) =>
        Ref.modify(state, (s) => {
          const group: MemoryRunnerGroup = {
            org,
            id: s.nextId,
            name,
            visibility: "all",
            allowsPublicRepositories: true
          }
          return [group.id, {
            ...s,
            nextId: s.nextId + 1,
            groups: HashMap.set(s.groups, org.toLowerCase(), [...groupsOf(s, org), group])
          }]
        }),
      addRunner: (scope, runner) =>
        Ref.modify(state, (s) => {
          const [record, next] = addRunnerTo(s, scope, {
            name: runner.name,
            status: runner.status ?? "online",
            busy: runner.busy ?? false,
            labels: runner.labels ?? [],
            stuckBusy: false
          })
          return [record.id, next]
        }),
      registerRunnerFromJit: (jitConfig) =>
        Ref.modify(state, (s): readonly [Option.Option<MemoryRunner>, State] => {
          const text = typeof jitConfig === "string" ? jitConfig : Redacted.value(jitConfig)
          const runner = Option.flatMap(HashMap.get(s.jits, text), (id) => HashMap.get(s.runners, id))
          if (Option.isNone(runner) || HashSet.has(s.neverRegister, runner.value.name)) return [Option.none(), s]
          const online: RunnerRecord = { ...runner.value, status: "online" }
          return [Option.some(runnerView(online)), { ...s, runners: HashMap.set(s.runners, online.id, online) }]
        }),
      neverRegister: (runnerName) => update((s) => ({ ...s, neverRegister: HashSet.add(s.neverRegister, runnerName) })),
      setRunnerStatus: (runnerName, status) => update((s) => updateRunner(s, runnerName, (r) => ({ ...r, status }))),
      setRunnerBusy: (runnerName, busy) =>
        update((s) => updateRunner(s, runnerName, (r) => ({ ...r, busy: r.stuckBusy || busy }))),
      setRunnerStuckBusy: (runnerName, stuck) =>
        update((s) => updateRunner(s, runnerName, (r) => ({ ...r, stuckBusy: stuck, busy: stuck ? true : r.busy }))),
      finishRunner: (runnerName) => update((s) => finish(s, runnerName)),
      removeRunner: (runnerName) => update((s) => updateRunner(s, runnerName, () => undefined)),
      createJob: (job) =>
        update((s) => ({
          ...s,
          nextId: s.nextId + 1,
          jobs: HashMap.set(s.jobs, job.id, {
            id: job.id,
            repo: job.repo,
            labels: job.labels ?? [],
            version: s.nextId,
            job: {
              status: job.status ?? "queued",
              conclusion: job.conclusion ?? null,
              runner_name: job.runnerName ?? null,
              run_id: job.runId
            }
          })
        })),
      setJobStatus: (jobId, u) =>
        update((s) =>
          bumpJob(s, jobId, (j) => ({
            ...j,
            job: {
              ...j.job,
              status: u.status,
              conclusion: u.conclusion === undefined ? j.job.conclusion : u.conclusion,
              runner_name: u.runnerName === undefined ? j.job.runner_name : u.runnerName
            }
          }))
        ),
      assignQueuedJob: (runnerName) =>
        Ref.modify(state, (s): readonly [Option.Option<MemoryJob>, State] => {
          const runner = Option.getOrUndefined(findRunnerByName(s, runnerName))
          if (runner === undefined || runner.status !== "online" || runner.busy) return [Option.none(), s]
          const carries = new Set(runner.labels.map((l) => l.toLowerCase()))
          const candidates = Array.from(HashMap.values(s.jobs))
            .filter((j) =>
              j.job.status === "queued"
              && (runner.scope._tag === "Org"
                ? same(ownerOf(j.repo), runner.scope.org)
                : same(j.repo, runner.scope.repo))
              && j.labels.every((l) => carries.has(l.toLowerCase()))
            )
            .sort((a, b) => a.id - b.id)
          const job = candidates[0]
          if (job === undefined) return [Option.none(), s]
          const s1 = bumpJob(
            s,
            job.id,
            (j) => ({ ...j, job: { ...j.job, status: "in_progress", runner_name: runnerName } })
          )
          const s2 = updateRunner(s1, runnerName, (r) => ({ ...r, busy: true }))
          return [Option.map(HashMap.get(s2.jobs, job.id), jobView), s2]
        }),
      completeJob: (jobId, conclusion) =>
        update((s) => {
          const runnerName = Option.getOrUndefined(HashMap.get(s.jobs, jobId))?.job.runner_name
          const s1 = bumpJob(s, jobId, (j) => ({ ...j, job: { ...j.job, status: "completed", conclusion } }))
          return runnerName ? finish(s1, runnerName) : s1
        }),
      createRun: (run) =>
        update((s) => ({
          ...s,
          nextId: s.nextId + 1,
          runs: HashMap.set(s.runs, run.id, {
            id: run.id,
            repo: run.repo,
            version: s.nextId,
            run: { status: run.status ?? "queued", conclusion: run.conclusion ?? null }
          })
        })),
      setRunStatus: (runId, u) =>
        update((s) =>
          Option.match(HashMap.get(s.runs, runId), {
            onNone: () => s,
            onSome: (r) => ({
              ...s,
              nextId: s.nextId + 1,
              runs: HashMap.set(s.runs, runId, {
                ...r,
                version: s.nextId,
                run: { status: u.status, conclusion: u.conclusion === undefined ? r.run.conclusion : u.conclusion }
              })
            })
          })
        ),
      setRateLimit: (installationId, b) =>
        update((s) => {
          const limit = b.limit ?? Option.getOrUndefined(HashMap.get(s.budgets, installationId))?.limit ?? defaultLimit
          return {
            ...s,
            budgets: HashMap.set(s.budgets, installationId, {
              limit,
              remaining: b.remaining,
              resetAt: b.resetAt.getTime()
            })
          }
        }),
      injectFault: (operation, fault, opts) =>
        update((s) => ({
          ...s,
          faults: [...s.faults, {
            operation,
            fault,
            remaining: opts?.times ?? Number.POSITIVE_INFINITY,
            probability: opts?.probability ?? 1
          }]
        })),
      clearFaults: update((s) => ({ ...s, faults: [] })),
      callCounts: counter.snapshot,
      snapshot: Ref.get(state).pipe(
        Effect.map((s): GithubMemorySnapshot => ({
          installations: Array.from(HashMap.values(s.installations)),
          runnerGroups: Array.from(HashMap.values(s.groups)).flat(),
          runners: Array.from(HashMap.values(s.runners)).sort((a, b) => a.id - b.id).map(runnerView),
          jobs: Array.from(HashMap.values(s.jobs)).sort((a, b) => a.id - b.id).map(jobView),
          runs: Array.from(HashMap.values(s.runs)).sort((a, b) => a.id - b.id).map((r) => ({
            id: r.id,
            repo: r.repo,
            ...r.run
          }))
        }))
      ),
      issuedSecrets: Ref.get(state).pipe(Effect.map((s) => [...HashMap.keys(s.tokens), ...HashMap.keys(s.jits)]))
    }

    return Context.make(Github, service).pipe(Context.add(GithubMemoryControl, control))
  })

/** The in-memory GitHub with options (app ids, budget size). */
export const GithubMemoryWith = (options: GithubMemoryOptions = {}): Layer.Layer<Github | GithubMemoryControl> =>
  Layer.effectContext(make(options))

/** The in-memory GitHub: the Github service plus its control handle, sharing one state. */
export const GithubMemory: Layer.Layer<Github | GithubMemoryControl> = GithubMemoryWith()
