import { Effect } from "effect"
import { toLabelSet } from "../../src/domain/Labels.ts"
import type { RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import type { Deliveries } from "./deliveries.ts"
import { installationCreatedPayload, type OwnerType, type SimRepo } from "./payloads.ts"
import { type JobRequest, type SimJob, SimRequestError } from "./worldApi.ts"
import type { WorldCore, WorldOwner } from "./worldCore.ts"

/*
 * Jobs submitted to the simulated GitHub: the request is checked, the owner gets its installation on first use
 * (and its `installation` delivery), each job and its run are created in GitHub, and their `queued` deliveries
 * follow. Owners, installations and repositories get stable ids, so runs stay apart in a database kept between them.
 */

/**
 * A stable id from a name (FNV-1a), in [base, base + 900,000,000): the same owner, installation or repository gets
 * the same id in every run, so the audit log of an earlier run (kept in the database) still tells them apart.
 */
const stableId = (base: number, name: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return base + (h % 900_000_000)
}

/** Owners' account ids come from the runner config when it names them, else from a counter. */
const configuredIds = (config: RunnerConfig): Map<string, number> => {
  const ids = new Map<string, number>()
  for (const [id, entry] of Object.entries(config.entities)) {
    if (entry.name !== undefined) ids.set(entry.name.toLowerCase(), Number(id))
  }
  return ids
}

const isOwnerType = (s: string): s is OwnerType => s === "Organization" || s === "User"

/**
 * `submitJobs` of the world. `dispatch` (GitHub offering queued jobs to idle runners) runs after each submission.
 */
export const makeJobSubmission = (core: WorldCore, deliveries: Deliveries, dispatch: Effect.Effect<void>) => {
  const { options, github, owners, jobs, locked, publish, now, startedAt } = core
  const { appIdFor, deliver, deliverJob } = deliveries
  const knownIds = configuredIds(options.runnerConfig)
  let nextJobId = options.firstJobId ?? Math.floor(startedAt / 1000) * 1000
  let nextRunId = nextJobId

  const ensureOwner = (login: string, type: OwnerType) =>
    Effect.gen(function*() {
      const key = login.toLowerCase()
      const known = owners.get(key)
      if (known !== undefined) {
        if (known.type !== type) {
          return yield* new SimRequestError({ message: `${login} is already an ${known.type}, not a ${type}` })
        }
        return known
      }
      const owner: WorldOwner = {
        login,
        id: knownIds.get(key) ?? stableId(100_000_000, `owner/${key}`),
        type,
        installationId: stableId(1_000_000_000, `installation/${key}`),
        repos: new Map<string, SimRepo>()
      }
      owners.set(key, owner)
      yield* github.addInstallation({ id: owner.installationId, account: { login, type, id: owner.id } })
      const at = yield* now
      yield* publish({ _tag: "InstallationCreated", at, owner: login, ownerType: type, installationId: owner.installationId })
      yield* deliver("installation", installationCreatedPayload(owner, appIdFor(type), [], new Date(at)), appIdFor(type), null)
      return owner
    })

  const ensureRepo = (owner: WorldOwner, fullName: string) => {
    const key = fullName.toLowerCase()
    const known = owner.repos.get(key)
    if (known !== undefined) return known
    const repo = { fullName, id: stableId(2_000_000_000, `repo/${key}`) }
    owner.repos.set(key, repo)
    return repo
  }

  const submitJobs = (request: JobRequest) =>
    locked(Effect.gen(function*() {
      const login = request.owner.trim()
      if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(login)) {
        return yield* new SimRequestError({ message: `owner must be a GitHub login, got ${JSON.stringify(request.owner)}` })
      }
      const type = request.ownerType ?? "Organization"
      if (!isOwnerType(type)) return yield* new SimRequestError({ message: `ownerType must be Organization or User` })
      const repoText = (request.repo ?? "app").trim()
      const fullName = repoText.includes("/") ? repoText : `${login}/${repoText}`
      if (fullName.split("/")[0]!.toLowerCase() !== login.toLowerCase() || !/^[^/\s]+\/[A-Za-z0-9._-]+$/.test(fullName)) {
        return yield* new SimRequestError({ message: `repo must be "${login}/<name>", got ${JSON.stringify(request.repo)}` })
      }
      const count = request.count ?? 1
      if (!Number.isInteger(count) || count < 1 || count > 1000) {
        return yield* new SimRequestError({ message: "count must be an integer from 1 to 1000" })
      }
      const seconds = request.durationSeconds ?? 60
      if (!(seconds >= 0 && seconds <= 7 * 24 * 3600)) {
        return yield* new SimRequestError({ message: "durationSeconds must be between 0 and 604800" })
      }
      const labels = toLabelSet(request.labels ?? ["ubuntu-24.04-riscv"])
      const owner = yield* ensureOwner(login, type)
      const repo = ensureRepo(owner, fullName)
      const at = yield* now
      const ids: Array<number> = []
      for (let i = 0; i < count; i++) {
        const job: SimJob = {
          id: nextJobId++,
          runId: nextRunId++,
          owner: owner.login,
          entityId: owner.id,
          repo: repo.fullName,
          labels,
          durationMs: Math.round(seconds * 1000),
          status: "queued",
          conclusion: null,
          runner: null,
          queuedAt: at,
          startedAt: null,
          completedAt: null
        }
        jobs.set(job.id, job)
        ids.push(job.id)
        yield* github.createRun({ id: job.runId, repo: repo.fullName, status: "queued" })
        yield* github.createJob({ id: job.id, repo: repo.fullName, runId: job.runId, labels, status: "queued" })
        yield* publish({ _tag: "JobQueued", at, jobId: job.id, owner: owner.login, repo: repo.fullName, labels, durationMs: job.durationMs })
        yield* deliverJob(job, "queued", null)
      }
      return ids
    })).pipe(Effect.tap(() => dispatch))

  return submitJobs
}
