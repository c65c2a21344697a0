import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, Option, TestClock } from "effect"
import { GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemoryControl } from "../../layers/kube/memory.ts"
import type { FailureInfo } from "../../src/domain/FailureInfo.ts"
import * as M from "../../src/observability/metrics.ts"
import { DEFAULT_IMAGE_REGISTRY } from "../../src/domain/RunnerConfig.ts"
import { runDemandCycle } from "../../src/scheduler/cycle.ts"
import { recordSucceeded } from "../../src/scheduler/succeededPods.ts"
import { STAGING_GROUP, STAGING_PREFIX } from "../../src/scheduler/settings.ts"
import { Db } from "../../src/services/Db.ts"
import { Kube } from "../../src/services/Kube.ts"
import { newJob } from "./dbFixtures.ts"
import {
  githubRunners,
  installBoth,
  makeCycle,
  ORG,
  podNames,
  queueJob,
  startRunners,
  USER,
  userJob,
  workerRows,
  type World,
  type WorldOptions
} from "./schedulerWorld.ts"

/** Runs one scenario in a fresh world (an empty store, a new GitHub and cluster) with TestClock in force. */
export type WorldRunner = <A, E>(body: Effect.Effect<A, E, World>, options?: WorldOptions) => Effect.Effect<A, unknown>

const name = (n: number) => `${STAGING_PREFIX}t${String(n).padStart(8, "0")}`
const at = (seconds: number) => TestClock.setTime(seconds * 1000)
const BETA = { id: 2002, login: "beta", installation: 6001 } as const
const betaJob = (jobId: number) => newJob(jobId, { entity_id: BETA.id, entity_name: BETA.login, installation_id: BETA.installation, repo_full_name: "beta/app" })
const installBeta = Effect.flatMap(GithubMemoryControl, (gh) =>
  gh.addInstallation({ id: BETA.installation, account: { login: BETA.login, type: "Organization", id: BETA.id } }))

const worker = (pod: string) => Effect.flatMap(Db, (db) => db.getWorker(pod)).pipe(Effect.map(Option.getOrThrow))
const job = (id: number) => Effect.flatMap(Db, (db) => db.getJob(id)).pipe(Effect.map(Option.getOrThrow))
const reason = (info: FailureInfo | null) => (info?.version === 2 ? info.reason : info?.version === 1 ? info.message : null)
const calls = (op: Parameters<typeof callsOf>[0]) => callsOf(op)
const callsOf = (op: "getJob" | "getRun" | "listRunnersOrgGroup" | "createJitConfigOrg" | "installationToken" | "deleteRunnerOrg") =>
  Effect.flatMap(GithubMemoryControl, (gh) => gh.callCounts).pipe(Effect.map((c) => Object.values(c[op]).reduce((a, b) => a + b, 0)))
const orgGroupId = Effect.flatMap(GithubMemoryControl, (gh) => gh.snapshot).pipe(
  Effect.map((s) => s.runnerGroups.find((g) => g.org === ORG.login && g.name === STAGING_GROUP)?.id ?? -1)
)
const pod = (podName: string) => Effect.flatMap(KubeMemoryControl, (k) => k.pods).pipe(Effect.map((ps) => ps.find((p) => p.name === podName)))
const events = (entityId: number) => Effect.flatMap(Db, (db) => db.getEventsByEntity(entityId))

/** Scenarios of the scheduler cycle, run against every Db implementation (in memory, and on PostgreSQL). */
export const schedulerScenarios = (label: string, run: WorldRunner) =>
  describe(`scheduler scenarios: ${label}`, () => {
    const scenario = <A, E>(title: string, body: Effect.Effect<A, E, World>, options?: WorldOptions) =>
      it.effect(title, () => run(Effect.asVoid(body), options))

    // --- demand matching and provisioning -----------------------------------------------------------------

    scenario("a pending job gets a runner: a pending worker, its pod and a JIT runner in the staging group", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      const [w] = yield* workerRows
      expect(w).toMatchObject({ pod_name: name(1), status: "pending", entity_id: ORG.id, repo_full_name: null, k8s_pool: "scw-em-rv1" })
      expect(yield* podNames).toEqual([name(1)])
      const p = (yield* pod(name(1)))!
      expect(p.labels).toMatchObject({
        app: "rise-riscv-runner",
        "riseproject.dev/board": "scw-em-rv1",
        "riseproject.dev/entity_name": "acme",
        "riseproject.dev/installation_id": String(ORG.installation)
      })
      // the rule's image names no registry: the pod pulls it from the configured one, and the worker says which
      expect(p.request.image).toBe(`${DEFAULT_IMAGE_REGISTRY}/riscv-runner:ubuntu-24.04-staging`)
      expect(w?.k8s_image).toBe(`${DEFAULT_IMAGE_REGISTRY}/riscv-runner:ubuntu-24.04-staging`)
      const runners = yield* githubRunners
      expect(runners).toHaveLength(1)
      expect(runners[0]).toMatchObject({ name: name(1), status: "offline", labels: ["ubuntu-24.04-riscv"], scope: { _tag: "Org", org: "acme", groupId: yield* orgGroupId } })
      // demand met: another cycle adds nothing
      yield* cycle
      expect(yield* podNames).toEqual([name(1)])
    }))

    scenario("a personal account's job gets a runner on its repository; the worker records the repository", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(userJob(1))
      yield* cycle
      expect((yield* workerRows)[0]).toMatchObject({ entity_type: "User", repo_full_name: "jane/tool" })
      expect((yield* githubRunners)[0]?.scope).toEqual({ _tag: "Repo", repo: "jane/tool" })
    }))

    scenario("a personal account's idle runner on one repository does not hold back a job on another", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(userJob(1, { repo_full_name: "jane/a" }))
      yield* cycle
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      // jane/a's job is cancelled before its runner takes it; the runner stays online and idle on jane/a
      yield* gh.setJobStatus(1, { status: "completed", conclusion: "cancelled" })
      yield* at(60)
      yield* cycle
      expect((yield* job(1)).status).toBe("completed")
      yield* queueJob(userJob(2, { repo_full_name: "jane/b" }))
      yield* at(61)
      yield* cycle
      // boards are free and the jane/a runner cannot take a jane/b job: jane/b gets its own runner now
      expect((yield* workerRows).map((w) => [w.pod_name, w.repo_full_name, w.status])).toEqual([
        [name(1), "jane/a", "running"],
        [name(2), "jane/b", "pending"]
      ])
      expect((yield* githubRunners).find((r) => r.name === name(2))?.scope).toEqual({ _tag: "Repo", repo: "jane/b" })
    }))

    scenario("a personal account's cap counts its runners over all its repositories", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(userJob(1, { repo_full_name: "jane/a" }))
      yield* queueJob(userJob(2, { repo_full_name: "jane/b" }))
      yield* queueJob(userJob(3, { repo_full_name: "jane/c" }))
      yield* cycle
      expect((yield* workerRows).map((w) => w.repo_full_name)).toEqual(["jane/a", "jane/b"])
    }), { config: { entities: { [USER.id]: { maxWorkers: 2 } } } })

    scenario("a banned entity's jobs stored before the ban get no runner: they fail with `entity banned`", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* queueJob(newJob(2))
      yield* queueJob(userJob(3))
      yield* cycle
      expect((yield* workerRows).map((w) => w.entity_id)).toEqual([USER.id])
      for (const id of [1, 2]) expect(yield* job(id)).toMatchObject({ status: "failed", failure_info: { version: 1, message: "entity banned" } })
      expect((yield* job(3)).status).toBe("pending")
      expect((yield* githubRunners).map((r) => r.name)).toEqual([name(1)])
    }), { config: { entities: { [ORG.id]: { banned: true } } } })

    scenario("the entity cap: maxWorkers from the config, across label sets", Effect.gen(function*() {
      yield* installBoth
      yield* installBeta
      const cycle = yield* makeCycle
      for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
      for (let i = 4; i <= 5; i++) yield* queueJob(newJob(i, { job_labels: ["ubuntu-24.04-riscv", "large"] }))
      for (let i = 6; i <= 8; i++) yield* queueJob(betaJob(i))
      yield* cycle
      const rows = yield* workerRows
      expect(rows.filter((w) => w.entity_id === ORG.id)).toHaveLength(2)
      // beta is unlisted: the default cap (3 in this world) applies
      expect(rows.filter((w) => w.entity_id === BETA.id)).toHaveLength(3)
      yield* cycle
      expect(yield* workerRows).toHaveLength(5)
    }), { config: { entities: { [ORG.id]: { maxWorkers: 2 } }, defaultMaxWorkers: 3 }, nodes: [{ name: "n", pool: "scw-em-rv1", slots: 20 }] })

    scenario("no cap when the config says null", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      for (let i = 1; i <= 6; i++) yield* queueJob(newJob(i))
      yield* cycle
      expect(yield* workerRows).toHaveLength(6)
    }), { config: { entities: { [ORG.id]: { maxWorkers: null } }, defaultMaxWorkers: 1 }, nodes: [{ name: "n", pool: "scw-em-rv1", slots: 20 }] })

    scenario("capacity: never more pods than free slots; a finished pod frees its slot", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      for (let i = 1; i <= 5; i++) yield* queueJob(newJob(i))
      yield* cycle
      expect(yield* podNames).toEqual([name(1), name(2)])
      yield* cycle
      expect(yield* podNames).toHaveLength(2)
      yield* at(10)
      yield* startRunners()
      // runner 1 ran job 1 and exits; the webhook said so
      yield* db.markJobRunning(1, name(1))
      yield* db.markJobCompleted(1, name(1))
      yield* kube.finishPod(name(1), 0)
      yield* at(20)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("completed")
      expect(yield* podNames).toEqual([name(1), name(2), name(3)])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 2 }] })

    scenario("the free-slot gauge shows the boards as the cycle left them, counting the pods it created", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      const free = Metric.value(M.tagged(M.poolSlotsFree, { pool: "scw-em-rv1" })).pipe(Effect.map((g) => g.value))
      yield* queueJob(newJob(1))
      yield* queueJob(newJob(2))
      const total = (yield* Effect.flatMap(Kube, (k) => k.capacity)).get("scw-em-rv1")!.total
      yield* cycle
      expect(yield* podNames).toHaveLength(2)
      expect(yield* free).toBe(total - 2)
    }))
    scenario("the fast path for a new job: demand matching alone, without job sync or the five phases", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* Kube
      const cluster = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners() // runner 1 takes job 1; no webhook tells the store
      yield* at(90) // job 1's news is stale, so a full cycle would poll it...
      yield* cluster.finishPod(name(1), 0) // ...and would record that pod 1 ended
      const polls = yield* calls("getJob")
      const listings = (yield* kube.callCounts).listPods
      yield* queueJob(newJob(2))
      yield* runDemandCycle()
      // the board pod 1 freed went to the new demand at once
      expect(yield* podNames).toEqual([name(1), name(2)])
      expect((yield* worker(name(2))).status).toBe("pending")
      // no job sync, no worker sync: job 1 unpolled, worker 1 not yet told its pod ended; one pod listing (capacity)
      expect(yield* calls("getJob")).toBe(polls)
      expect((yield* worker(name(1))).status).toBe("pending")
      expect((yield* job(1)).status).toBe("pending")
      expect((yield* kube.callCounts).listPods - listings).toBe(1)
      // another fast path with the demand met adds nothing
      yield* runDemandCycle()
      expect(yield* podNames).toHaveLength(2)
      // the full cycle does the rest
      yield* at(91)
      yield* cycle
      expect(yield* calls("getJob")).toBeGreaterThan(polls)
      expect((yield* worker(name(1))).status).toBe("completed")
      expect((yield* job(1)).status).toBe("running")
      expect(yield* podNames).toHaveLength(2)
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 1 }] })

    scenario("the fast path records the succeeded pods the watch handed it, so a runner that is gone serves no pending job", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const kube = yield* Kube
      const cluster = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners()
      // runner 1 ran job 1 and exited; the webhook said so, and no full cycle has seen the pod end
      yield* db.markJobRunning(1, name(1))
      yield* db.markJobCompleted(1, name(1))
      yield* cluster.finishPod(name(1), 0)
      yield* queueJob(newJob(2))
      // without the pod's end, worker 1 still counts as job 2's runner: nothing is provisioned
      yield* runDemandCycle()
      expect(yield* podNames).toEqual([name(1)])
      expect((yield* worker(name(1))).status).toBe("pending")
      // handed the succeeded pod (as the watch reports it), the fast path records its end and fills the board
      const pod1 = (yield* kube.listRunnerPods).find((p) => p.name === name(1))!
      expect(pod1.phase).toBe("Succeeded")
      yield* runDemandCycle(undefined, Effect.succeed([pod1]))
      const w1 = yield* worker(name(1))
      expect(w1.status).toBe("completed")
      expect(w1.completed_at).not.toBeNull()
      expect(w1.running_at).not.toBeNull()
      expect(yield* podNames).toEqual([name(1), name(2)])
      // the full cycle after it finds the end recorded and changes nothing
      yield* at(20)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("completed")
      expect(yield* podNames).toEqual([name(1), name(2)])
      // handed again (the pod's deletion reported later), nothing moves
      expect(yield* recordSucceeded([pod1])).toEqual([])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 1 }] })

    scenario("a runner whose pod ended before its job's news came is the job's runner still: no second runner for it", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const kube = yield* Kube
      const cluster = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners()
      // runner 1 ran job 1 and exited; the watch saw it at once, GitHub's news of job 1 is still on its way
      yield* cluster.finishPod(name(1), 0)
      const pod1 = (yield* kube.listRunnerPods).find((p) => p.name === name(1))!
      yield* runDemandCycle(undefined, Effect.succeed([pod1]))
      expect((yield* worker(name(1))).status).toBe("completed")
      expect((yield* job(1)).status).toBe("pending")
      expect(yield* podNames, "job 1 ran on runner 1: a second runner would wait out its idle timeout on the board").toEqual([name(1)])
      // the news comes; the next job gets the freed board
      yield* db.markJobRunning(1, name(1))
      yield* db.markJobCompleted(1, name(1))
      yield* queueJob(newJob(2))
      yield* runDemandCycle()
      expect(yield* podNames).toEqual([name(1), name(2)])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 1 }] })

    scenario("the fast path respects the lock, the caps and the back-off like the full cycle", Effect.gen(function*() {
      yield* installBoth
      for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
      yield* runDemandCycle()
      // cap 2 for acme in this config
      expect(yield* podNames).toEqual([name(1), name(2)])
      const db = yield* Db
      // the lock is the scheduler's: a fast path waits for a running cycle rather than run beside it
      const order: Array<string> = []
      const holder = yield* Effect.fork(db.withWorkerLock(Effect.gen(function*() {
        order.push("held")
        yield* Effect.sleep("1 second")
        order.push("released")
      })))
      yield* TestClock.adjust(0)
      const fast = yield* Effect.fork(Effect.zipRight(runDemandCycle(), Effect.sync(() => order.push("fast path"))))
      yield* TestClock.adjust("2 seconds")
      yield* Effect.zip(holder.await, fast.await)
      expect(order).toEqual(["held", "released", "fast path"])
    }), { config: { defaultMaxWorkers: 2 } })

    scenario("capacity exhausted: pods of other pools and a node that left do not count as free slots", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1, { k8s_pool: "cloudv10x-jupiter" }))
      yield* cycle
      expect(yield* podNames).toEqual([])
      yield* kube.addNode("j1", "cloudv10x-jupiter", 1)
      yield* cycle
      expect(yield* podNames).toEqual([name(1)])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 5 }] })

    scenario("two label sets in one pool never satisfy each other", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* queueJob(newJob(2, { job_labels: ["ubuntu-24.04-riscv", "large"] }))
      yield* cycle
      const rows = yield* workerRows
      expect(rows.map((w) => w.job_labels)).toEqual([["ubuntu-24.04-riscv"], ["large", "ubuntu-24.04-riscv"]])
      // the "large" worker fails: only the "large" job is short of a runner again
      yield* db.markWorkerFailed(name(2), null, { version: 2, reason: "pod_failed" }, null)
      yield* cycle
      expect((yield* workerRows).slice(2).map((w) => w.job_labels)).toEqual([["large", "ubuntu-24.04-riscv"]])
    }))

    scenario("retry after a failed worker: a pod that fails gets its job a new runner in the same cycle", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      yield* kube.writeLog(name(1), "runner", "docker did not start\n")
      yield* at(8)
      yield* kube.finishPod(name(1), 3)
      yield* at(10)
      yield* cycle
      const failed = yield* worker(name(1))
      expect(failed.status).toBe("failed")
      expect(failed.completed_at?.getTime()).toBe(8000)
      expect(failed.failure_info).toMatchObject({ version: 2, reason: "pod_failed", containers: { runner: { exit_code: 3, logs: "docker did not start\n" } } })
      expect((yield* worker(name(2))).status).toBe("pending")
      expect((yield* job(1)).status).toBe("pending")
    }))

    scenario("a failed provisioning fails its worker, then backs off doubling; the group's other jobs wait too", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* gh.injectFault("createJitConfigOrg", { _tag: "Status", status: 422, message: "Invalid runner labels" })
      for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
      const failures = Effect.map(workerRows, (ws) => ws.filter((w) => reason(w.failure_info) === "pod_allocation_failure").length)
      yield* cycle
      expect(yield* failures).toBe(1)
      const first = yield* worker(name(1))
      expect(first.status).toBe("failed")
      expect(first.failure_info).toEqual({ version: 2, reason: "pod_allocation_failure", pod_message: "createJitConfigOrg: GitHub answered 422: Invalid runner labels" })
      yield* at(14)
      yield* cycle
      expect(yield* failures).toBe(1)
      yield* at(15)
      yield* cycle
      expect(yield* failures).toBe(2)
      yield* at(44)
      yield* cycle
      expect(yield* failures).toBe(2)
      yield* at(45)
      yield* cycle
      expect(yield* failures).toBe(3)
      // GitHub accepts again; the back-off (60 s after the third failure) still holds until 105 s
      yield* gh.clearFaults
      yield* at(104)
      yield* cycle
      expect(yield* podNames).toEqual([])
      // then one probe; once it is allocated, the run of failures is over and the rest of the group follows
      yield* at(105)
      yield* cycle
      expect(yield* podNames).toHaveLength(1)
      yield* at(106)
      yield* cycle
      expect(yield* podNames).toHaveLength(3)
    }))

    scenario("a burst reserves every planned name at once; a failed provisioning fails only its worker, and its group's unused names are given back", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      // the organisation's first JIT config fails; the personal account's group is untouched
      yield* gh.injectFault("createJitConfigOrg", { _tag: "Status", status: 422, message: "Invalid runner labels" }, { times: 1 })
      for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
      for (let i = 4; i <= 5; i++) yield* queueJob(userJob(i))
      yield* cycle
      const rows = yield* workerRows
      // the organisation's group stopped at its failure: one failed worker, its two other reservations released
      expect(rows.filter((w) => w.entity_type === "Organization").map((w) => [w.status, reason(w.failure_info)])).toEqual([["failed", "pod_allocation_failure"]])
      // the other group's runners were provisioned and their reservations stand, pending, each with its pod
      const users = rows.filter((w) => w.entity_type === "User")
      expect(users.map((w) => w.status)).toEqual(["pending", "pending"])
      expect([...(yield* podNames)].sort()).toEqual(users.map((w) => w.pod_name).sort())
      for (let i = 1; i <= 5; i++) expect((yield* job(i)).status).toBe("pending")
    }))

    scenario("the back-off is per (entity, label set): another label set goes ahead", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* gh.injectFault("createJitConfigOrg", { _tag: "Status", status: 500 }, { times: 1 })
      yield* queueJob(newJob(1))
      yield* queueJob(newJob(2, { job_labels: ["ubuntu-24.04-riscv", "large"] }))
      yield* cycle
      expect((yield* workerRows).map((w) => w.status)).toEqual(["failed", "pending"])
      yield* at(5)
      yield* cycle
      expect(yield* workerRows).toHaveLength(2)
      yield* at(15)
      yield* cycle
      expect((yield* workerRows).map((w) => w.status)).toEqual(["failed", "pending", "pending"])
    }))

    scenario("a pod the cluster refuses: worker failed, and the runner GitHub registered is removed again", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.injectFault({ operation: "createPod", status: 403, message: "createPod failed with HTTP 403: Forbidden" })
      yield* queueJob(newJob(1))
      yield* cycle
      expect(yield* worker(name(1))).toMatchObject({
        status: "failed",
        failure_info: { version: 2, reason: "pod_allocation_failure", pod_message: "createPod failed with HTTP 403: Forbidden" }
      })
      expect(yield* githubRunners).toEqual([])
    }))

    scenario("provisioning for an uninstalled app: worker failed, one auth_attempt.404 row per attempt, then back-off", Effect.gen(function*() {
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1, { installation_id: 9999, entity_id: 4004, entity_name: "gone" }))
      yield* queueJob(newJob(2, { installation_id: 9999, entity_id: 4004, entity_name: "gone" }))
      yield* cycle
      expect((yield* worker(name(1))).failure_info).toMatchObject({ reason: "pod_allocation_failure", pod_message: expect.stringContaining("installationToken") })
      const rows = yield* events(4004)
      expect(rows.map((r) => [r.source, r.event, r.outcome])).toEqual([["scheduler", "auth_attempt.404", "auth_404"]])
      expect(Option.getOrThrow(yield* db.getEventPayload(rows[0]!.id))).toMatchObject({
        installation_id: 9999,
        repository: { full_name: "acme/app" },
        workflow_job: null,
        http_status: 404
      })
      yield* at(10)
      yield* cycle
      expect(yield* events(4004)).toHaveLength(1)
      expect(yield* workerRows).toHaveLength(1)
    }))

    scenario("a taken runner name is drawn again; five clashes give up without a failed worker", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* queueJob(newJob(2))
      yield* queueJob(newJob(3))
      yield* cycle
      expect((yield* workerRows).map((w) => w.pod_name)).toEqual([`${STAGING_PREFIX}aaaaaaaaa`, `${STAGING_PREFIX}bbbbbbbbb`])
      expect((yield* workerRows).every((w) => w.status === "pending")).toBe(true)
    }), { suffixes: ["aaaaaaaaa", "aaaaaaaaa", "bbbbbbbbb", ...Array(5).fill("aaaaaaaaa")] })

    // four old jobs of acme, two newer of beta, three boards; the policy comes from the world's config
    const scarce = Effect.gen(function*() {
      yield* installBoth
      yield* installBeta
      const cycle = yield* makeCycle
      for (let i = 1; i <= 4; i++) {
        yield* at(i)
        yield* queueJob(newJob(i))
      }
      for (let i = 5; i <= 6; i++) {
        yield* at(10 + i)
        yield* queueJob(betaJob(i))
      }
      yield* cycle
      // groups are provisioned concurrently, so only the counts are fixed (the planner's order has its own tests)
      return (yield* workerRows).map((w) => w.entity_name).sort()
    })

    scenario("fair share under scarcity: the next board goes to the entity furthest below its share", Effect.gen(function*() {
      expect(yield* scarce).toEqual(["acme", "acme", "beta"])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 3 }] })

    scenario("fifo under scarcity: the oldest jobs first, as the original", Effect.gen(function*() {
      expect(yield* scarce).toEqual(["acme", "acme", "acme"])
    }), { nodes: [{ name: "n", pool: "scw-em-rv1", slots: 3 }], config: { policy: "fifo" } })

    // --- job sync -------------------------------------------------------------------------------------------

    const noBoards: WorldOptions = { nodes: [] }

    scenario("job sync: a conclusion or completed -> completed; in_progress -> running, recording the runner", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      for (let i = 1; i <= 4; i++) yield* queueJob(newJob(i))
      yield* gh.setJobStatus(1, { status: "completed", conclusion: "success", runnerName: "r1" })
      yield* gh.setJobStatus(2, { status: "in_progress", runnerName: "r2" })
      yield* gh.setJobStatus(3, { status: "queued", conclusion: "cancelled" })
      yield* at(60)
      yield* cycle
      expect(yield* job(1)).toMatchObject({ status: "completed", k8s_pod: "r1" })
      expect(yield* job(2)).toMatchObject({ status: "running", k8s_pod: "r2" })
      expect(yield* job(3)).toMatchObject({ status: "completed", k8s_pod: null })
      expect((yield* job(4)).status).toBe("pending")
    }), noBoards)

    scenario("job sync polls only stale jobs, and an unchanged job costs a free 304", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(59)
      yield* cycle
      expect(yield* calls("getJob")).toBe(0)
      yield* at(60)
      yield* cycle
      yield* at(61)
      yield* cycle
      expect(yield* calls("getJob")).toBe(1)
      yield* at(120)
      yield* cycle
      const counts = (yield* Effect.flatMap(GithubMemoryControl, (gh) => gh.callCounts)).getJob
      expect(counts).toEqual({ 200: 1, 304: 1 })
      // webhook news makes the job fresh again
      yield* at(170)
      yield* db.markJobRunning(1, "r1")
      yield* at(200)
      yield* cycle
      expect(yield* calls("getJob")).toBe(2)
    }), noBoards)

    scenario("job sync: a job GitHub does not know fails with v1 info", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* db.addJob(newJob(9))
      yield* at(60)
      yield* cycle
      const failed = yield* job(9)
      expect(failed.status).toBe("failed")
      expect(failed.failure_info).toEqual({ version: 1, message: "job not found for job_id=9 entity=acme entity_id=1001 entity_type=Organization" })
    }), noBoards)

    scenario("job sync: a missing installation fails the job and writes an auth_attempt.404 row", Effect.gen(function*() {
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* db.addJob(newJob(9, { installation_id: 9999, entity_id: 4004, entity_name: "gone" }))
      yield* at(60)
      yield* cycle
      expect((yield* job(9)).failure_info).toEqual({ version: 1, message: "installation not found for installation_id=9999 entity_type=Organization" })
      const rows = yield* events(4004)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({
        source: "scheduler",
        event: "auth_attempt.404",
        outcome: "auth_404",
        installation_id: 9999,
        app_id: 2167633,
        entity_type: "Organization",
        entity_id: 4004,
        entity_name: "gone"
      })
      const payload = Option.getOrThrow(yield* db.getEventPayload(rows[0]!.id))
      expect(payload).toEqual({
        installation_id: 9999,
        app_id: 2167633,
        entity_type: "Organization",
        entity_id: 4004,
        entity_name: "gone",
        repository: { full_name: "acme/app" },
        workflow_job: { id: 9 },
        http_status: 404,
        error_message: expect.stringContaining("404")
      })
    }), noBoards)

    scenario("job sync: other auth errors write auth_attempt.other_error and leave the job; no answer writes nothing", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* gh.injectFault("installationToken", { _tag: "Status", status: 500, message: "boom" }, { times: 1 })
      yield* at(60)
      yield* cycle
      const rows = yield* events(ORG.id)
      expect(rows.map((r) => [r.event, r.outcome])).toEqual([["auth_attempt.other_error", "auth_other_error"]])
      expect(Option.getOrThrow(yield* Effect.flatMap(Db, (db) => db.getEventPayload(rows[0]!.id)))).toMatchObject({ http_status: 500 })
      expect((yield* job(1)).status).toBe("pending")
      yield* gh.injectFault("installationToken", { _tag: "Transport" }, { times: 1 })
      yield* at(120)
      yield* cycle
      expect(yield* events(ORG.id)).toHaveLength(1)
      expect((yield* job(1)).status).toBe("pending")
    }), noBoards)

    scenario("job sync: a job still queued 10 minutes after its run completed fails", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* gh.setRunStatus(1_000_001, { status: "completed", conclusion: "cancelled" })
      yield* at(9 * 60)
      yield* cycle
      expect((yield* job(1)).status).toBe("pending")
      expect(yield* calls("getRun")).toBe(0)
      yield* at(10 * 60)
      yield* cycle
      expect((yield* job(1)).failure_info).toEqual({ version: 1, message: "workflow run 1000001 completed (conclusion=cancelled) while job 1 stayed queued" })
    }), noBoards)

    scenario("job sync keeps the reserve share of an installation's budget", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* gh.setRateLimit(ORG.installation, { limit: 5000, remaining: 1003, resetAt: new Date(3_600_000) })
      for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
      yield* at(60)
      yield* cycle
      // the budget was unknown before the first call: all three polled; 1000 left is the 20 % reserve
      expect(yield* calls("getJob")).toBe(3)
      yield* at(200)
      yield* cycle
      expect(yield* calls("getJob")).toBe(3)
      // the window resets: polling resumes
      yield* at(3600)
      yield* cycle
      expect(yield* calls("getJob")).toBe(6)
    }), noBoards)

    scenario("passive cancellation: a job cancelled without a webhook completes, and its idle runner is cleaned up", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      yield* gh.setJobStatus(1, { status: "completed", conclusion: "cancelled" })
      yield* at(60)
      yield* cycle
      expect((yield* job(1)).status).toBe("completed")
      yield* at(5 + 600)
      yield* cycle
      expect((yield* worker(name(1))).failure_info).toMatchObject({ reason: "runner_idle" })
      expect(yield* githubRunners).toEqual([])
      expect((yield* pod(name(1)))?.activeDeadlineSeconds).toBe(1)
      // nothing left to serve: no new runner
      expect(yield* podNames).toEqual([name(1)])
    }))

    // --- the five phases --------------------------------------------------------------------------------------

    scenario("phase 1: a worker whose pod vanished ends completed, without failure_info", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* Kube
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* kube.deletePod(name(1))
      yield* at(30)
      yield* cycle
      expect(yield* worker(name(1))).toMatchObject({ status: "completed", failure_info: null })
      expect((yield* worker(name(1))).completed_at?.getTime()).toBe(30_000)
    }))

    scenario("phase 2: pod phases move workers on, with the times the containers report", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners()
      yield* at(7)
      yield* cycle
      const running = yield* worker(name(1))
      expect(running).toMatchObject({ status: "running", k8s_node: "node-1" })
      expect(running.running_at?.getTime()).toBe(5000)
      yield* at(20)
      yield* kube.finishPod(name(1), 0)
      yield* at(21)
      yield* cycle
      const done = yield* worker(name(1))
      expect(done).toMatchObject({ status: "completed", k8s_node: "node-1", failure_info: null })
      expect(done.completed_at?.getTime()).toBe(20_000)
    }))

    scenario("phase 2: a pod first seen already Succeeded still gets running_at, from its runner's start", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners()
      // a short job: the runner starts at 5 s and ends at 9 s, before the next cycle looks
      yield* at(9)
      yield* kube.finishPod(name(1), 0)
      yield* at(30)
      yield* cycle
      const done = yield* worker(name(1))
      expect(done).toMatchObject({ status: "completed", failure_info: null })
      expect([done.running_at?.getTime(), done.completed_at?.getTime()]).toEqual([5000, 9000])
    }))

    scenario("phase 3: pending 600 s -> pod_stuck_pending: runner deleted, worker failed with events, pod killed", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.holdPending({ pool: "scw-em-rv1" })
      yield* queueJob(newJob(1))
      yield* cycle
      yield* kube.reconcile
      yield* at(599)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("pending")
      yield* at(600)
      yield* cycle
      const w = yield* worker(name(1))
      expect(w.status).toBe("failed")
      expect(w.failure_info).toMatchObject({ version: 2, reason: "pod_stuck_pending", events: [{ reason: "FailedScheduling" }] })
      expect((yield* githubRunners).map((r) => r.name)).not.toContain(name(1))
      // never placed on a node, so the active deadline would never fire: the pod is deleted
      expect(yield* pod(name(1))).toBeUndefined()
    }))

    scenario("phase 3: an image that cannot be pulled fails the worker at the first report, with the pod's message", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.failImagePull({ pool: "scw-em-rv1" })
      yield* queueJob(newJob(1))
      yield* cycle
      yield* kube.reconcile
      yield* at(1)
      yield* cycle
      const w = yield* worker(name(1))
      expect(w.status).toBe("failed")
      expect(w.failure_info).toMatchObject({ reason: "image_pull_failed", containers: { runner: { reason: "ErrImagePull" } } })
      const message = w.failure_info?.version === 2 ? w.failure_info.pod_message : undefined
      expect(message).toMatch(/^ErrImagePull: failed to pull and unpack image ".*riscv-runner:ubuntu-24.04-staging"/)
      // placed on a node: stopped through its active deadline, and it stays listed for its diagnostics
      expect((yield* pod(name(1)))?.activeDeadlineSeconds).toBe(1)
      expect((yield* job(1)).status).toBe("pending")
    }))

    scenario("a bad image costs one failed worker per back-off step, not one per waiting job", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.failImagePull({ pool: "scw-em-rv1" })
      yield* queueJob(newJob(1))
      yield* cycle
      yield* kube.reconcile
      for (let i = 2; i <= 4; i++) yield* queueJob(newJob(i))
      const pullFailures = Effect.map(workerRows, (ws) => ws.filter((w) => reason(w.failure_info) === "image_pull_failed").length)
      // t=1: the first worker fails; its streak of one holds the group for 15 s
      yield* at(1)
      yield* cycle
      expect(yield* pullFailures).toBe(1)
      expect(yield* podNames).toEqual([name(1)])
      // t=16: the back-off has passed; one probe, not one runner per waiting job
      yield* at(16)
      yield* cycle
      expect(yield* podNames).toEqual([name(1), name(2)])
      yield* kube.reconcile
      yield* at(17)
      yield* cycle
      expect(yield* pullFailures).toBe(2)
      yield* at(46)
      yield* cycle
      expect(yield* podNames).toHaveLength(2)
      // t=47 (30 s after the second failure): the next probe; the image is fixed meanwhile and the probe runs
      yield* kube.failImagePull({ pool: "scw-em-rv1" }, false)
      yield* at(47)
      yield* cycle
      expect(yield* podNames).toHaveLength(3)
      yield* kube.reconcile
      yield* at(48)
      yield* cycle
      // the probe was allocated: the run of failures is over, and the other jobs get their runners
      expect(yield* pullFailures).toBe(2)
      expect(yield* podNames).toHaveLength(6)
    }))

    scenario("phase 3: running but never registered for 120 s -> runner_never_registered", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* gh.neverRegister(name(1))
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(10)
      yield* startRunners()
      yield* at(11)
      yield* cycle
      yield* at(129)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("running")
      yield* at(130)
      yield* cycle
      expect((yield* worker(name(1))).failure_info).toMatchObject({ reason: "runner_never_registered", containers: { runner: { exit_code: null } } })
      // its offline runner was deleted; the job, still queued, got a new runner
      expect((yield* githubRunners).map((r) => r.name)).toEqual([name(2)])
    }), { settings: { timeouts: { jobPollStaleness: Duration.hours(10) } } })

    scenario("phase 3: online and busy is healthy however long; online but idle for 600 s -> runner_idle", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* queueJob(newJob(2, { job_labels: ["ubuntu-24.04-riscv", "large"] }))
      yield* cycle
      yield* at(10)
      // the first runner takes job 1; the second has no job it may take (job 2 is not in GitHub's queue for it)
      const gh = yield* GithubMemoryControl
      yield* gh.setJobStatus(2, { status: "waiting" })
      yield* startRunners()
      yield* at(11)
      yield* cycle
      yield* at(609)
      yield* cycle
      expect((yield* workerRows).map((w) => w.status)).toEqual(["running", "running"])
      yield* at(610)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("running")
      expect((yield* worker(name(2))).failure_info).toMatchObject({ reason: "runner_idle" })
      yield* at(100_000)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("running")
    }), { settings: { timeouts: { jobPollStaleness: Duration.hours(100) } } })

    scenario("phase 3: a runner that ran its job and unregistered is healthy", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(10)
      yield* startRunners()
      yield* gh.completeJob(1, "success")
      yield* db.markJobCompleted(1, name(1)) // the webhook
      yield* at(500)
      yield* cycle
      expect(yield* githubRunners).toEqual([])
      expect((yield* worker(name(1))).status).toBe("running")
    }))

    scenario("phase 3: when GitHub refuses to delete the runner (busy, or any error) the worker is left for the next cycle", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.holdPending({ pool: "scw-em-rv1" })
      yield* queueJob(newJob(1))
      yield* cycle
      yield* gh.setRunnerStuckBusy(name(1), true)
      yield* at(600)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("pending")
      expect((yield* pod(name(1)))?.activeDeadlineSeconds).toBeGreaterThan(1)
      yield* gh.setRunnerStuckBusy(name(1), false)
      yield* gh.setRunnerBusy(name(1), false)
      yield* gh.injectFault("deleteRunnerOrg", { _tag: "Status", status: 502 }, { times: 1 })
      yield* at(615)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("pending")
      yield* at(630)
      yield* cycle
      expect((yield* worker(name(1))).failure_info).toMatchObject({ reason: "pod_stuck_pending" })
    }))

    scenario("phase 4: leftover runners with our prefix are deleted; live workers' and foreign runners stay", Effect.gen(function*() {
      yield* installBoth
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      const group = yield* orgGroupId
      yield* gh.addRunner({ _tag: "Org", org: "acme", groupId: group }, { name: `${STAGING_PREFIX}leftover1`, status: "offline" })
      yield* gh.addRunner({ _tag: "Org", org: "acme", groupId: group }, { name: "self-hosted-by-acme", status: "online" })
      yield* gh.addRunner({ _tag: "Repo", repo: "jane/tool" }, { name: `${STAGING_PREFIX}leftover2`, status: "offline" })
      yield* at(30)
      yield* cycle
      expect((yield* githubRunners).map((r) => r.name).sort()).toContain(`${STAGING_PREFIX}leftover1`) // not listed yet
      yield* at(300)
      yield* cycle
      // the org scope (with a live worker) is listed every 5 minutes; the repo scope has no worker, so it is not
      expect((yield* githubRunners).map((r) => r.name).sort()).toEqual([name(1), `${STAGING_PREFIX}leftover2`, "self-hosted-by-acme"].sort())
    }))

    scenario("phase 4: the runner of a worker that just ended is deleted in the same cycle", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      yield* kube.finishPod(name(1), 1)
      yield* at(6)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("failed")
      expect((yield* githubRunners).map((r) => r.name)).toEqual([name(2)])
    }))

    scenario("phase 5: finished pods are deleted 6 h after they finish, stray ones too", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const k = yield* Kube
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(5)
      yield* startRunners()
      yield* at(10)
      yield* kube.finishPod(name(1), 0)
      yield* k.createRunnerPod({ name: "stray-pod", jitConfig: (yield* pod(name(1)))!.request.jitConfig, image: "i", pool: "elsewhere", entity: { type: "Organization", id: 1, name: "x" }, installationId: 1 })
      yield* at(10 + 6 * 3600 - 1)
      yield* cycle
      expect(yield* podNames).toContain(name(1))
      yield* at(10 + 6 * 3600)
      yield* cycle
      expect(yield* podNames).not.toContain(name(1))
      yield* at(20 * 3600)
      yield* kube.removeNode("node-1", "Failed")
      yield* cycle
      yield* at(30 * 3600)
      yield* cycle
      expect(yield* podNames).toEqual(["stray-pod"]) // Pending forever: not finished, so kept
    }))

    scenario("the runner listing is spent only when a verdict needs it: busy runners with known jobs cost nothing", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(10)
      yield* startRunners()
      yield* db.markJobRunning(1, name(1)) // the webhook's in_progress
      for (let t = 15; t < 300; t += 15) {
        yield* at(t)
        yield* cycle
      }
      expect(yield* calls("listRunnersOrgGroup")).toBe(0)
      yield* at(300)
      yield* cycle
      expect(yield* calls("listRunnersOrgGroup")).toBe(1)
      expect((yield* worker(name(1))).status).toBe("running")
      // one installation token for everything so far
      expect(yield* calls("installationToken")).toBe(1)
    }), { settings: { timeouts: { jobPollStaleness: Duration.hours(10) } } })

    scenario("a failing part is logged and the cycle goes on: no pod listing still provisions", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* queueJob(newJob(2))
      yield* kube.injectFault({ operation: "listPods", status: 500, times: 1 })
      yield* at(15)
      yield* cycle
      // worker sync was skipped (no worker orphaned for want of a listing), demand matching ran
      expect((yield* workerRows).map((w) => w.status)).toEqual(["pending", "pending"])
    }))
  })
