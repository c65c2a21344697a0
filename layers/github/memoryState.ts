import { Duration, HashMap, HashSet, Option } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { GithubInstallation, GithubJob, GithubRun } from "../../src/services/Github.ts"
import type {
  GithubFault,
  GithubMemorySnapshot,
  MemoryJob,
  MemoryRunner,
  MemoryRunnerGroup,
  MemoryRunnerScope
} from "./memoryControl.ts"
import type { GithubOperation } from "../../src/services/Github.ts"
import type { DeliveryAttempt } from "./githubHttp.ts"

/*
 * What the in-memory GitHub knows, as one immutable value in one Ref: installations, runner groups, runners, JIT
 * configs, jobs and runs (each with a version, which is its ETag), issued tokens, budgets and pending faults. The
 * functions here are pure changes to that value, shared by the HTTP routes and the control handle.
 */

export interface RunnerRecord {
  readonly id: number
  readonly name: string
  readonly status: "online" | "offline"
  readonly busy: boolean
  readonly scope: MemoryRunnerScope
  readonly labels: ReadonlyArray<string>
  readonly stuckBusy: boolean
}

export interface JobRecord {
  readonly id: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
  readonly job: GithubJob
  readonly version: number
}

export interface RunRecord {
  readonly id: number
  readonly repo: string
  readonly run: GithubRun
  readonly version: number
}

export interface Budget {
  readonly limit: number
  readonly remaining: number
  readonly resetAt: number
}

export interface FaultRecord {
  readonly operation: GithubOperation
  readonly fault: GithubFault
  readonly remaining: number
  readonly probability: number
}

export interface InstallationRecord {
  readonly installation: GithubInstallation
  /** the app it was installed through */
  readonly app: EntityType
}

export interface State {
  readonly nextId: number
  readonly installations: HashMap.HashMap<number, InstallationRecord>
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
  /** every attempt to deliver a webhook, oldest first, per app it was sent as */
  readonly deliveries: ReadonlyArray<DeliveryRecord>
}

/** One webhook delivery attempt in an app's delivery log. */
export interface DeliveryRecord extends DeliveryAttempt {
  readonly app: EntityType
}

export const emptyState: State = {
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
  faults: [],
  deliveries: []
}

export const tokenLifetime = Duration.toMillis(Duration.hours(1))
export const budgetWindow = Duration.toMillis(Duration.hours(1))

/** GitHub logins and repository names are case-insensitive. */
export const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()
export const ownerOf = (repo: string) => repo.split("/")[0] ?? ""

export const groupsOf = (s: State, org: string): ReadonlyArray<MemoryRunnerGroup> =>
  Option.getOrElse(HashMap.get(s.groups, org.toLowerCase()), () => [
    { org, id: 1, name: "Default", visibility: "all", allowsPublicRepositories: false }
  ])

export const addGroup = (
  s: State,
  org: string,
  group: Omit<MemoryRunnerGroup, "org" | "id">
): readonly [MemoryRunnerGroup, State] => {
  const record: MemoryRunnerGroup = { org, id: s.nextId, ...group }
  return [record, {
    ...s,
    nextId: s.nextId + 1,
    groups: HashMap.set(s.groups, org.toLowerCase(), [...groupsOf(s, org), record])
  }]
}

export const runnerView = (r: RunnerRecord): MemoryRunner => ({ ...r })
export const jobView = (j: JobRecord): MemoryJob => ({ id: j.id, repo: j.repo, labels: j.labels, ...j.job })

export const findRunnerByName = (s: State, name: string) =>
  Option.map(HashMap.findFirst(s.runners, (r) => r.name === name), ([, r]) => r)

export const updateRunner = (s: State, name: string, f: (r: RunnerRecord) => RunnerRecord | undefined): State =>
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

export const addRunnerTo = (
  s: State,
  scope: MemoryRunnerScope,
  runner: Omit<RunnerRecord, "id" | "scope">
): readonly [RunnerRecord, State] => {
  const record: RunnerRecord = { ...runner, id: s.nextId, scope }
  return [record, { ...s, nextId: s.nextId + 1, runners: HashMap.set(s.runners, record.id, record) }]
}

/** An ephemeral runner done with its job removes itself, unless it is stuck busy. */
export const finishRunner = (s: State, runnerName: string): State =>
  updateRunner(s, runnerName, (r) => (r.stuckBusy ? r : undefined))

/** Stores a job or run as a new version (its ETag changes); the version comes from the id sequence. */
export const putJob = (s: State, j: Omit<JobRecord, "version">): State => ({
  ...s,
  nextId: s.nextId + 1,
  jobs: HashMap.set(s.jobs, j.id, { ...j, version: s.nextId })
})
export const putRun = (s: State, r: Omit<RunRecord, "version">): State => ({
  ...s,
  nextId: s.nextId + 1,
  runs: HashMap.set(s.runs, r.id, { ...r, version: s.nextId })
})

/** Changes a job or run, if there is one; every change is a new version. */
export const bumpJob = (s: State, jobId: number, f: (j: JobRecord) => Omit<JobRecord, "version">): State =>
  Option.match(HashMap.get(s.jobs, jobId), { onNone: () => s, onSome: (j) => putJob(s, f(j)) })
export const bumpRun = (s: State, runId: number, f: (r: RunRecord) => Omit<RunRecord, "version">): State =>
  Option.match(HashMap.get(s.runs, runId), { onNone: () => s, onSome: (r) => putRun(s, f(r)) })

/** Deterministic token-looking text: unique, distinctive enough for leak scans, no randomness needed. */
export const secretText = (prefix: string, n: number) =>
  `${prefix}${(n * 2654435761).toString(36)}${n.toString(36)}memory`

export const snapshotOf = (s: State): GithubMemorySnapshot => ({
  installations: Array.from(HashMap.values(s.installations)),
  runnerGroups: Array.from(HashMap.values(s.groups)).flat(),
  runners: Array.from(HashMap.values(s.runners)).sort((a, b) => a.id - b.id).map(runnerView),
  jobs: Array.from(HashMap.values(s.jobs)).sort((a, b) => a.id - b.id).map(jobView),
  runs: Array.from(HashMap.values(s.runs)).sort((a, b) => a.id - b.id).map((r) => ({
    id: r.id,
    repo: r.repo,
    ...r.run
  }))
})
