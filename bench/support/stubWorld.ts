/**
 * The closed loop over the contract suites' stubs (`githubStub.ts`, `kubeStub.ts`), for benchmarks that run the
 * live Octokit and client-node layers: what `layers/sim` does for the in-memory twins, cut down to the happy path.
 *
 * - `submitJob` creates the job and its run on the GitHub stub and sends the signed `queued` delivery;
 * - a runner pod the API stub stores starts after `bootDelay` (bound to a board of its pool, Running); its runner
 *   registers from the JIT config in the pod's env and GitHub hands it the oldest queued job of its scope whose
 *   labels it carries (`in_progress`);
 * - the job runs for its duration, GitHub completes it (`completed`) and removes the ephemeral runner, whose process
 *   exits: the pod ends Succeeded, and the pod watch hears of it.
 *
 * No faults: the benchmark measures the service's own path. Everything runs on the world's fibers in the scope that
 * made it, on Effect's (real) clock.
 */
import { Duration, Effect, Queue, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import type { Json, KubeStubShape } from "./kubeStub.ts"
import { finishStubPod, startStubPod } from "./kubeStub.ts"
import type { GithubStubState } from "./githubStub.ts"
import { installationCreatedPayload, type SimOwner, type SimRepo, workflowJobPayload } from "../../layers/sim/payloads.ts"
import type { WebhookTransportShape } from "../../layers/sim/webhookTransport.ts"

export interface StubWorldOptions {
  readonly github: GithubStubState
  readonly kube: KubeStubShape
  readonly transport: WebhookTransportShape
  /** the org app's id (the deliveries' installation target) */
  readonly orgAppId: number
  /** from a pod's start to its runner's registration */
  readonly bootDelay: Duration.DurationInput
}

export interface StubWorld {
  /** Installs the org app for `login` (its `installation` delivery is sent) unless it is installed already. */
  readonly addOwner: (login: string) => Effect.Effect<SimOwner>
  /** A job of `seconds` for `login`'s repository `app`; its `queued` delivery goes out in the background. */
  readonly submitJob: (login: string, seconds: number) => Effect.Effect<number>
}

interface WorldJob {
  readonly id: number
  readonly runId: number
  readonly owner: SimOwner
  readonly repo: SimRepo
  readonly labels: ReadonlyArray<string>
  readonly durationMs: number
  readonly createdAt: Date
}

interface Runner {
  readonly pod: string
  readonly runnerId: number
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

const jitOf = (pod: Json): string | undefined =>
  (pod.spec?.containers?.[0]?.env ?? []).find((e: Json) => e.name === "RUNNER_JITCONFIG")?.value

export const makeStubWorld = (options: StubWorldOptions): Effect.Effect<StubWorld, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { github, kube, transport } = options
    const scope = yield* Effect.scope
    const background = <A>(effect: Effect.Effect<A>) => Effect.asVoid(Effect.forkIn(effect, scope))
    const owners = new Map<string, SimOwner>()
    const queued: Array<WorldJob> = []
    const idle: Array<Runner> = []
    let nextJob = Math.floor(Date.now() / 1000) * 1000
    const encoder = new TextEncoder()

    const send = (event: string, payload: unknown) =>
      background(transport.send({ event, deliveryId: randomUUID(), appId: options.orgAppId, body: encoder.encode(JSON.stringify(payload)) }))

    const deliverJob = (job: WorldJob, action: "queued" | "in_progress" | "completed", runner: { id: number; name: string } | null, at: Date) =>
      send("workflow_job", workflowJobPayload({
        owner: job.owner,
        repo: job.repo,
        jobId: job.id,
        runId: job.runId,
        labels: job.labels,
        action,
        conclusion: action === "completed" ? "success" : null,
        runner,
        createdAt: job.createdAt,
        startedAt: action === "queued" ? null : at,
        completedAt: action === "completed" ? at : null
      }))

    const addOwner = (login: string) =>
      Effect.suspend(() => {
        const known = owners.get(login.toLowerCase())
        if (known !== undefined) return Effect.succeed(known)
        const id = 500_000 + owners.size
        const owner: SimOwner = { login, id, type: "Organization", installationId: 900_000 + owners.size }
        owners.set(login.toLowerCase(), owner)
        github.installations.set(owner.installationId, {
          installation: { id: owner.installationId, account: { login, type: "Organization", id } },
          appId: options.orgAppId
        })
        return Effect.as(send("installation", installationCreatedPayload(owner, options.orgAppId, [], new Date())), owner)
      })

    /** GitHub offers each idle runner the oldest queued job of its scope that its labels serve. */
    const dispatch = Effect.suspend(() => {
      const starts: Array<Effect.Effect<void>> = []
      for (let r = 0; r < idle.length; r++) {
        const runner = github.runners.get(idle[r]!.runnerId)
        if (runner === undefined) continue
        const at = queued.findIndex((job) =>
          (runner.scope._tag === "Org" ? same(runner.scope.org, job.owner.login) : same(runner.scope.repo, job.repo.fullName)) &&
          job.labels.every((l) => runner.labels.includes(l))
        )
        if (at < 0) continue
        const [job] = queued.splice(at, 1)
        const [taken] = idle.splice(r--, 1)
        starts.push(startJob(taken!, job!))
      }
      return Effect.all(starts, { discard: true })
    })

    const startJob = (runner: Runner, job: WorldJob) =>
      Effect.gen(function*() {
        const stored = github.jobs.get(job.id)
        const registered = github.runners.get(runner.runnerId)
        if (stored === undefined || registered === undefined) return
        stored.status = "in_progress"
        stored.runner_name = registered.name
        registered.busy = true
        const run = github.runs.get(job.runId)
        if (run !== undefined) run.status = "in_progress"
        yield* deliverJob(job, "in_progress", { id: registered.id, name: registered.name }, new Date())
        yield* background(Effect.zipRight(Effect.sleep(Duration.millis(job.durationMs)), finishJob(runner, job)))
      })

    const finishJob = (runner: Runner, job: WorldJob) =>
      Effect.gen(function*() {
        const stored = github.jobs.get(job.id)
        const registered = github.runners.get(runner.runnerId)
        if (stored !== undefined) {
          stored.status = "completed"
          stored.conclusion = "success"
        }
        const run = github.runs.get(job.runId)
        if (run !== undefined) {
          run.status = "completed"
          run.conclusion = "success"
        }
        // the ephemeral runner is gone from GitHub once its job is done; its process exits
        github.runners.delete(runner.runnerId)
        yield* deliverJob(job, "completed", registered === undefined ? null : { id: registered.id, name: registered.name }, new Date())
        finishStubPod(kube, runner.pod, 0)
      })

    /** The pod's container started: its runner connects with the JIT config, or exits when GitHub forgot it. */
    const boot = (name: string) =>
      Effect.suspend(() => {
        if (startStubPod(kube, name) !== undefined) return Effect.void
        const pod = [...kube.pods.values()].find((p) => p.metadata.name === name)
        const runnerId = github.jits.get(jitOf(pod ?? {}) ?? "")
        const runner = runnerId === undefined ? undefined : github.runners.get(runnerId)
        if (runner === undefined) {
          finishStubPod(kube, name, 1)
          return Effect.void
        }
        runner.status = "online"
        idle.push({ pod: name, runnerId: runner.id })
        return dispatch
      })

    // The API stub reports every stored change; only creations and deletions concern the world.
    const changes = yield* Queue.unbounded<{ readonly type: string; readonly name: string }>()
    const listener = (type: string, pod: Json) => {
      if (type !== "MODIFIED") Queue.unsafeOffer(changes, { type, name: String(pod.metadata.name) })
    }
    kube.listeners.add(listener)
    yield* Effect.addFinalizer(() => Effect.sync(() => kube.listeners.delete(listener)))
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(changes), (change) => {
      if (change.type === "ADDED") return background(Effect.zipRight(Effect.sleep(options.bootDelay), boot(change.name)))
      // deleted: its runner (if it was waiting for a job) is gone with it
      return Effect.sync(() => {
        const at = idle.findIndex((r) => r.pod === change.name)
        if (at >= 0) idle.splice(at, 1)
      })
    })))

    const submitJob = (login: string, seconds: number) =>
      Effect.gen(function*() {
        const owner = yield* addOwner(login)
        const id = nextJob++
        const job: WorldJob = {
          id,
          runId: id,
          owner,
          repo: { fullName: `${owner.login}/app`, id: 700_000 + owner.id },
          labels: ["ubuntu-24.04-riscv"],
          durationMs: Math.round(seconds * 1000),
          createdAt: new Date()
        }
        github.runs.set(job.runId, { repo: job.repo.fullName, status: "queued", conclusion: null })
        github.jobs.set(id, { repo: job.repo.fullName, status: "queued", conclusion: null, runner_name: null, run_id: job.runId, labels: job.labels })
        queued.push(job)
        yield* deliverJob(job, "queued", null, job.createdAt)
        yield* dispatch
        return id
      })

    return { addOwner, submitJob } satisfies StubWorld
  })
