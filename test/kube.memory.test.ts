import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Queue, Redacted, Stream, TestClock } from "effect"
import { finishedAt, runnerStartedAt, type ContainerState } from "../src/domain/Pod.ts"
import { Kube, type RunnerPodRequest } from "../src/services/Kube.ts"
import { KubeMemory, KubeMemoryControl, type KubeMemoryOptions, type PodChange } from "../layers/kube/memory.ts"
import { kubeContract } from "./contracts/kube.ts"
import { memoryContractLayer } from "./support/kubeHarness.ts"

const JIT = "memory-jit-secret"

const request = (name: string, pool = "scw-em-rv1"): RunnerPodRequest => ({
  name,
  jitConfig: Redacted.make(`${JIT}-${name}`),
  image: "registry.example/riscv-runner:ubuntu-24.04-latest",
  pool,
  entity: { type: "Organization", id: 7, name: "octo" },
  installationId: 70
})

const withCluster = <A, E>(
  body: Effect.Effect<A, E, Kube | KubeMemoryControl>,
  options: KubeMemoryOptions = { tick: null }
) => Effect.provide(body, KubeMemory(options))

const find = (name: string) =>
  Effect.flatMap(KubeMemoryControl, (c) => c.pods).pipe(
    Effect.map((pods) => pods.find((p) => p.name === name)),
    Effect.flatMap(Effect.fromNullable),
    Effect.orDie
  )

const runnerState = (name: string) => Effect.map(find(name), (p): ContainerState | undefined => p.containers[0]?.state)

const eventReasons = (name: string) =>
  Effect.flatMap(Kube, (k) => k.podEvents(name)).pipe(Effect.map((es) => es.map((e) => e.reason)))

kubeContract("memory", () => memoryContractLayer())

describe("KubeMemory: scheduler and kubelet", () => {
  it.effect("a pod runs when a slot is free, and waits with FailedScheduling when none is", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* ctl.addNode("other", "cloudv10x-jupiter", 4)
      yield* kube.createRunnerPod(request("p1"))
      yield* TestClock.adjust("1 second")
      yield* kube.createRunnerPod(request("p2"))
      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile

      const p1 = yield* find("p1")
      expect(p1.phase).toBe("Running")
      expect(p1.nodeName).toBe("n1")
      expect(p1.creationTime.getTime()).toBe(0)
      expect(runnerStartedAt(p1)?.getTime()).toBe(2000)
      expect(yield* eventReasons("p1")).toEqual(["Scheduled", "Pulling", "Pulled", "Created", "Started"])

      const p2 = yield* find("p2")
      expect(p2.phase).toBe("Pending")
      expect(p2.nodeName).toBeNull()
      const [failed] = yield* kube.podEvents("p2")
      expect(failed).toMatchObject({ type: "Warning", reason: "FailedScheduling", count: 1 })
      expect(failed?.message).toBe(
        "0/2 nodes are available: 1 Insufficient riseproject.com/runner, 1 node(s) didn't match Pod's node affinity/selector."
      )
      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile
      expect((yield* kube.podEvents("p2"))[0]).toMatchObject({ count: 2 })
      expect((yield* kube.capacity).get("scw-em-rv1")).toMatchObject({ total: 1, active: 2, available: -1 })

      // The first runner ends; the next pass places the waiting pod.
      yield* TestClock.adjust("1 second")
      expect(yield* ctl.finishPod("p1", 0)).toBe(true)
      expect(finishedAt(yield* find("p1"))?.getTime()).toBe(4000)
      yield* ctl.reconcile
      expect((yield* find("p2")).phase).toBe("Running")
      expect((yield* kube.capacity).get("scw-em-rv1")).toMatchObject({ active: 1, available: 0 })
    })))

  it.effect("the layer's own tick moves pods as the Clock moves", () =>
    withCluster(
      Effect.gen(function*() {
        const kube = yield* Kube
        const ctl = yield* KubeMemoryControl
        yield* ctl.addNode("n1", "scw-em-rv1", 2)
        yield* kube.createRunnerPod(request("p1"))
        expect((yield* find("p1")).phase).toBe("Pending")
        yield* TestClock.adjust("999 millis")
        expect((yield* find("p1")).phase).toBe("Pending")
        yield* TestClock.adjust("1 millis")
        const p1 = yield* find("p1")
        expect(p1.phase).toBe("Running")
        expect(runnerStartedAt(p1)?.getTime()).toBe(1000)
      }),
      {}
    ))

  it.effect("the image pull takes pullDuration", () =>
    withCluster(
      Effect.gen(function*() {
        const kube = yield* Kube
        const ctl = yield* KubeMemoryControl
        yield* ctl.addNode("n1", "scw-em-rv1", 1)
        yield* kube.createRunnerPod(request("p1"))
        yield* TestClock.adjust("1 second")
        const pulling = yield* find("p1")
        expect(pulling.phase).toBe("Pending")
        expect(pulling.nodeName).toBe("n1")
        expect(pulling.containers[0]?.state).toEqual({ _tag: "Waiting", reason: "ContainerCreating", message: "" })
        expect(yield* eventReasons("p1")).toEqual(["Scheduled", "Pulling"])
        // A bound pod holds its slot while it pulls.
        expect((yield* kube.capacity).get("scw-em-rv1")?.available).toBe(0)

        yield* TestClock.adjust("29 seconds")
        expect((yield* find("p1")).phase).toBe("Pending")
        yield* TestClock.adjust("1 second")
        const started = yield* find("p1")
        expect(started.phase).toBe("Running")
        expect(runnerStartedAt(started)?.getTime()).toBe(31_000)
        expect((yield* kube.podEvents("p1")).find((e) => e.reason === "Pulled")?.message).toContain("in 30s")
      }),
      { pullDuration: "30 seconds" }
    ))

  it.effect("a failing image pull leaves the pod Pending in ErrImagePull, then ImagePullBackOff, until it is fixed", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* ctl.failImagePull({ pool: "scw-em-rv1" })
      yield* kube.createRunnerPod(request("p1"))
      yield* ctl.reconcile
      expect(yield* runnerState("p1")).toMatchObject({ _tag: "Waiting", reason: "ErrImagePull" })
      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile
      expect(yield* runnerState("p1")).toMatchObject({ _tag: "Waiting", reason: "ImagePullBackOff" })
      const pod = yield* find("p1")
      expect(pod.phase).toBe("Pending")

      const info = yield* kube.collectFailureInfo(pod, "pod_stuck_pending")
      expect(info.containers?.["runner"]).toMatchObject({ exit_code: null, reason: "ImagePullBackOff" })
      const events = info.events ?? []
      expect(events.map((e) => e.reason)).toEqual(["Scheduled", "Pulling", "Failed", "Failed", "BackOff", "Failed"])
      expect(events[2]?.message).toContain("Failed to pull image")
      expect(events.map((e) => e.message)).toContain("Error: ImagePullBackOff")

      // The kubelet retries after its back-off (10 s, then doubling); once the registry is fixed, the pod runs.
      yield* ctl.failImagePull({ pool: "scw-em-rv1" }, false)
      yield* TestClock.adjust("8 seconds")
      yield* ctl.reconcile
      expect((yield* find("p1")).phase).toBe("Pending")
      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile
      expect((yield* find("p1")).phase).toBe("Running")
      expect((yield* kube.podEvents("p1")).find((e) => e.reason === "Pulling")?.count).toBe(2)
    })))

  it.effect("a pull failure can target one pod", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 2)
      yield* ctl.failImagePull({ pod: "bad" })
      yield* kube.createRunnerPod(request("bad"))
      yield* kube.createRunnerPod(request("good"))
      yield* ctl.reconcile
      expect((yield* find("bad")).phase).toBe("Pending")
      expect((yield* find("good")).phase).toBe("Running")
    })))

  it.effect("a kill fails a running pod with DeadlineExceeded; an unplaced pod dies only once placed", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* kube.createRunnerPod(request("p1"))
      yield* kube.createRunnerPod(request("p2"))
      yield* ctl.reconcile
      yield* kube.killPod("p1")
      yield* kube.killPod("p2")
      expect((yield* find("p1")).activeDeadlineSeconds).toBe(1)
      // Nothing happens before the kubelet's next pass a second later.
      yield* ctl.reconcile
      expect((yield* find("p1")).phase).toBe("Running")

      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile
      const p1 = yield* find("p1")
      expect(p1).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded" })
      expect(p1.containers[0]?.state).toMatchObject({ _tag: "Terminated", exitCode: 137 })
      expect(finishedAt(p1)?.getTime()).toBe(1000)
      // the runner started when the pod was placed, at 0, and says so after its end
      expect(runnerStartedAt(p1)?.getTime()).toBe(0)
      expect(yield* eventReasons("p1")).toEqual(["Scheduled", "Pulling", "Pulled", "Created", "Started", "Killing", "DeadlineExceeded"])

      // The deadline is the kubelet's: the scheduler places p2 in the freed slot and the kubelet then ends it.
      const p2 = yield* find("p2")
      expect(p2.phase).toBe("Running")
      yield* TestClock.adjust("1 second")
      yield* ctl.reconcile
      expect(yield* find("p2")).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded" })
      // A finished pod cannot be finished again.
      expect(yield* ctl.finishPod("p2", 0)).toBe(false)
    })))

  it.effect("a runner's exit code decides Succeeded or Failed", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 2)
      yield* kube.createRunnerPod(request("ok"))
      yield* kube.createRunnerPod(request("ko"))
      expect(yield* ctl.finishPod("ok", 0)).toBe(false) // still Pending
      yield* ctl.reconcile
      yield* ctl.writeLog("ko", "runner", "exit 3\n")
      expect(yield* ctl.finishPod("ok", 0)).toBe(true)
      expect(yield* ctl.finishPod("ko", 3)).toBe(true)
      expect(yield* find("ok")).toMatchObject({ phase: "Succeeded", reason: "" })
      expect(yield* runnerState("ok")).toMatchObject({ _tag: "Terminated", exitCode: 0, reason: "Completed" })
      const ko = yield* find("ko")
      expect(ko.phase).toBe("Failed")
      const info = yield* kube.collectFailureInfo(ko, "pod_failed")
      expect(info.containers?.["runner"]).toEqual({ exit_code: 3, reason: "Error", message: "", logs: "exit 3\n" })
      expect(info.pod_reason).toBeUndefined()
    })))

  it.effect("a lost node takes its pods down: Failed, Unknown or deleted", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* ctl.addNode("n2", "scw-em-rv1", 1)
      yield* ctl.addNode("n3", "scw-em-rv1", 1)
      for (const name of ["p1", "p2", "p3", "p4"]) yield* kube.createRunnerPod(request(name))
      yield* ctl.reconcile
      const byNode = new Map((yield* ctl.pods).map((p) => [p.nodeName, p.name]))
      expect((yield* find("p4")).nodeName).toBeNull()

      yield* ctl.removeNode("n1")
      yield* ctl.removeNode("n2", "Unknown")
      yield* ctl.removeNode("n3", "Deleted")
      expect(yield* find(byNode.get("n1")!)).toMatchObject({ phase: "Failed", reason: "NodeLost" })
      expect(yield* find(byNode.get("n2")!)).toMatchObject({ phase: "Unknown", reason: "NodeLost" })
      expect((yield* ctl.pods).map((p) => p.name)).not.toContain(byNode.get("n3"))
      expect(yield* eventReasons(byNode.get("n1")!)).toContain("NodeNotReady")
      expect((yield* kube.capacity).get("scw-em-rv1")).toEqual({ pool: "scw-em-rv1", total: 0, usable: 0, active: 1, available: -1, boards: [] })
      expect((yield* ctl.nodes).length).toBe(0)
    })))

  it.effect("held pods stay Pending until released", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.addNode("n1", "scw-em-rv1", 4)
      yield* ctl.holdPending({ pool: "scw-em-rv1" })
      yield* kube.createRunnerPod(request("p1"))
      yield* TestClock.adjust("2 minutes")
      const p1 = yield* find("p1")
      expect(p1.phase).toBe("Pending")
      expect(p1.nodeName).toBeNull()
      const [ev] = yield* kube.podEvents("p1")
      expect(ev).toMatchObject({ reason: "FailedScheduling", count: 120 })
      expect(ev?.message).toBe("0/1 nodes are available: 1 node(s) were unschedulable.")
      expect(ev?.firstSeen?.getTime()).toBe(1000)
      expect(ev?.lastSeen?.getTime()).toBe(120_000)

      yield* ctl.holdPending({ pool: "scw-em-rv1" }, false)
      yield* TestClock.adjust("1 second")
      expect((yield* find("p1")).phase).toBe("Running")
    }), {}))

  it.effect("injected faults fail the next calls of one operation, and are counted", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* ctl.injectFault({ operation: "listPods", status: 503, times: 2 })
      const first = yield* Effect.either(kube.listRunnerPods)
      const second = yield* Effect.either(kube.capacity)
      const third = yield* Effect.either(kube.listRunnerPods)
      expect(Either.isLeft(first) && first.left).toMatchObject({ _tag: "KubeError", operation: "listPods", status: 503 })
      expect(Either.isLeft(second) && second.left.status).toBe(503)
      expect(Either.isRight(third)).toBe(true)
      expect(yield* ctl.callCounts).toMatchObject({ listPods: 3, listNodes: 1 })

      yield* ctl.injectFault({ operation: "deletePod", times: Infinity })
      for (let i = 0; i < 3; i++) expect(Either.isLeft(yield* Effect.either(kube.deletePod("x")))).toBe(true)
      yield* ctl.clearFaults
      yield* kube.deletePod("x")
    })))

  it.effect("pod names and labels are validated like the API server does", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const bad = yield* Effect.either(kube.createRunnerPod(request("Not_A_Name")))
      expect(Either.isLeft(bad) && bad.left._tag === "KubeError" && bad.left.status).toBe(422)
      const badPool = yield* Effect.either(kube.createRunnerPod(request("p1", "bad pool")))
      expect(Either.isLeft(badPool) && badPool.left._tag === "KubeError" && badPool.left.status).toBe(422)
    })))
})

describe("KubeMemory: observing pods", () => {
  it.effect("handlers see every phase move inline, with the JIT config at hand", () =>
    withCluster(Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      const seen: Array<string> = []
      let jit = ""
      // A closed-loop runner: it registers when its pod starts and finishes the job at once.
      yield* ctl.onPhaseChange((c: PodChange) =>
        Effect.gen(function*() {
          seen.push(`${c.name}:${c.from ?? "-"}->${c.to ?? "deleted"}`)
          if (c.to === "Running") {
            jit = Redacted.value(c.pod.request.jitConfig)
            yield* ctl.finishPod(c.name, 0)
          }
        })
      )
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* kube.createRunnerPod(request("p1"))
      yield* ctl.reconcile
      expect((yield* find("p1")).phase).toBe("Succeeded")
      // Snapshots hold the request, but the secret stays redacted when printed.
      expect(JSON.stringify(yield* ctl.pods)).not.toContain(JIT)
      yield* kube.deletePod("p1")
      expect(seen).toEqual(["p1:-->Pending", "p1:Pending->Running", "p1:Running->Succeeded", "p1:Succeeded->deleted"])
      expect(jit).toBe(`${JIT}-p1`)
    }))))

  it.effect("a subscription queues changes from the moment it is taken", () =>
    withCluster(Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      yield* kube.createRunnerPod(request("before"))
      const queue = yield* ctl.subscribe
      yield* ctl.addNode("n1", "scw-em-rv1", 2)
      yield* kube.createRunnerPod(request("after"))
      yield* ctl.reconcile
      const changes = Chunk.toReadonlyArray(yield* Queue.takeAll(queue))
      expect(changes.map((c) => `${c.name}:${c.to}`)).toEqual(["after:Pending", "before:Running", "after:Running"])
      expect(changes.every((c) => c.at.getTime() === 0)).toBe(true)
    }))))

  it.effect("the changes stream delivers moves to a running consumer", () =>
    withCluster(Effect.gen(function*() {
      const kube = yield* Kube
      const ctl = yield* KubeMemoryControl
      const consumer = yield* Effect.fork(Stream.runCollect(Stream.take(ctl.changes, 2)))
      // The stream subscribes once its fiber runs; let it get there.
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      yield* ctl.addNode("n1", "scw-em-rv1", 1)
      yield* kube.createRunnerPod(request("p1"))
      yield* ctl.reconcile
      const got = Chunk.toReadonlyArray(yield* Fiber.join(consumer))
      expect(got.map((c) => c.to)).toEqual(["Pending", "Running"])
    })))
})
