import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Queue, Redacted, TestClock } from "effect"
import { Kube, type RunnerPodRequest } from "../src/services/Kube.ts"
import { KubeLive, toPod, toPodEvent, type KubeLiveOptions } from "../layers/kube/client.ts"
import { runnerPodManifest } from "../layers/kube/podSpec.ts"
import { kubeContract, takeUntil, watchInto } from "./contracts/kube.ts"
import {
  addStubNode,
  endWatches,
  expireWatches,
  nodeChanged,
  setStubNodeHealth,
  KubeStub,
  KubeStubLive,
  kubeLiveOnStub,
  STUB_TOKEN
} from "../bench/support/kubeStub.ts"
import { stubContractLayer } from "./support/kubeStubHarness.ts"

const JIT = "c2VjcmV0LWppdC1jb25maWc="

const request = (name: string, pool = "scw-em-rv1"): RunnerPodRequest => ({
  name,
  jitConfig: Redacted.make(JIT),
  image: "registry.example/riscv-runner:ubuntu-24.04-latest",
  pool,
  entity: { type: "User", id: 660779, name: "luhenry" },
  installationId: 88
})

const onStub = (options: Omit<KubeLiveOptions, "kubeconfigYaml" | "kubeconfigPath"> = {}) =>
  kubeLiveOnStub(options).pipe(Layer.provideMerge(KubeStubLive))

kubeContract("client-node on the API stub", () => stubContractLayer())

describe("KubeLive requests", () => {
  it.effect("creates exactly the pod spec, which the schema-checking stub accepts", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.createRunnerPod(request("rise-riscv-runner-0a1b2c3d4"))
      const post = stub.requests.find((r) => r.operation === "createPod")!
      expect(post.method).toBe("POST")
      expect(post.path).toBe("/api/v1/namespaces/default/pods")
      expect(JSON.parse(post.body)).toEqual(runnerPodManifest(request("rise-riscv-runner-0a1b2c3d4"), "default"))
    }).pipe(Effect.provide(onStub())))

  it.effect("a kill is a strategic merge patch of the deadline alone", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.createRunnerPod(request("p1"))
      yield* kube.killPod("p1")
      const patch = stub.requests.find((r) => r.operation === "patchPod")!
      expect(patch.method).toBe("PATCH")
      expect(patch.path).toBe("/api/v1/namespaces/default/pods/p1")
      expect(patch.contentType).toMatch(/^application\/strategic-merge-patch\+json/)
      expect(JSON.parse(patch.body)).toEqual({ spec: { activeDeadlineSeconds: 1 } })
      expect([...stub.pods.values()][0]?.spec.activeDeadlineSeconds).toBe(1)
    }).pipe(Effect.provide(onStub())))

  it.effect("a delete with grace 0 says so; a plain delete leaves the grace to the pod", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.deletePod("p1")
      yield* kube.deletePod("p2", { gracePeriodSeconds: 0 })
      const [plain, now] = stub.requests.filter((r) => r.operation === "deletePod")
      expect(plain!.query.get("gracePeriodSeconds")).toBeNull()
      expect(now!.path).toBe("/api/v1/namespaces/default/pods/p2")
      expect(now!.query.get("gracePeriodSeconds")).toBe("0")
    }).pipe(Effect.provide(onStub())))

  it.effect("a pod that avoids quarantined boards passes the schema with its node affinity", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      const avoiding = { ...request("rise-riscv-runner-avoid0001"), avoidNodes: ["board-7", "board-2"] }
      yield* kube.createRunnerPod(avoiding)
      const created = [...stub.pods.values()][0]!
      expect(created.spec.affinity).toEqual({
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["board-2", "board-7"] }] }]
          }
        }
      })
    }).pipe(Effect.provide(onStub())))

  it.effect("capacity asks for board nodes and unfinished runner pods only", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.capacity
      const nodes = stub.requests.find((r) => r.operation === "listNodes")!
      const pods = stub.requests.find((r) => r.operation === "listPods")!
      expect(nodes.query.get("labelSelector")).toBe("riseproject.dev/board")
      expect(pods.query.get("labelSelector")).toBe("app=rise-riscv-runner")
      expect(pods.query.get("fieldSelector")).toBe("status.phase!=Succeeded,status.phase!=Failed")
      expect(stub.requests).toHaveLength(2)
    }).pipe(Effect.provide(onStub())))

  it.effect("events are selected by pod, logs by container", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.podEvents("p1")
      const events = stub.requests.find((r) => r.operation === "listEvents")!
      expect(events.path).toBe("/api/v1/namespaces/default/events")
      expect(events.query.get("fieldSelector")).toBe("involvedObject.kind=Pod,involvedObject.name=p1")
      yield* Effect.either(kube.containerLogs("p1", "runner"))
      const log = stub.requests.find((r) => r.operation === "readLog")!
      expect(log.path).toBe("/api/v1/namespaces/default/pods/p1/log")
      expect(log.query.get("container")).toBe("runner")
      expect(log.query.get("tailLines")).toBeNull()
    }).pipe(Effect.provide(onStub())))

  it.effect("logTailLines bounds the log read", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* Effect.either(kube.containerLogs("p1", "runner"))
      expect(stub.requests.find((r) => r.operation === "readLog")?.query.get("tailLines")).toBe("50")
    }).pipe(Effect.provide(onStub({ logTailLines: 50 }))))

  it.effect("works in the namespace it is given", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.createRunnerPod(request("p1"))
      expect((yield* kube.listRunnerPods).map((p) => p.name)).toEqual(["p1"])
      yield* kube.deletePod("p1")
      expect(stub.requests.map((r) => r.path)).toEqual([
        "/api/v1/namespaces/runners/pods",
        "/api/v1/namespaces/runners/pods",
        "/api/v1/namespaces/runners/pods/p1"
      ])
      expect(JSON.parse(stub.requests[0]!.body).metadata.namespace).toBe("runners")
    }).pipe(Effect.provide(onStub({ namespace: "runners" }))))
})

describe("KubeLive pod watch", () => {
  const watchRequests = (stub: { requests: ReadonlyArray<{ operation: string; query: URLSearchParams }> }) =>
    stub.requests.filter((r) => r.operation === "watchPods")

  it.effect("watches runner pods from the listing's resourceVersion, with bookmarks and a server-side timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      yield* kube.createRunnerPod(request("p1"))
      const { queue } = yield* watchInto
      yield* takeUntil(queue, (c) => c._tag === "Listed")
      yield* kube.createRunnerPod(request("p2"))
      yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "p2")
      const [list] = stub.requests.filter((r) => r.operation === "listPods")
      expect(list!.query.get("labelSelector")).toBe("app=rise-riscv-runner")
      const [watch] = watchRequests(stub)
      expect(watch!.query.get("watch")).toBe("true")
      expect(watch!.query.get("labelSelector")).toBe("app=rise-riscv-runner")
      expect(watch!.query.get("allowWatchBookmarks")).toBe("true")
      expect(watch!.query.get("timeoutSeconds")).toBe("90")
      // the listing happened after p1 was created (version 2): the watch starts there, so p1 is no change
      expect(watch!.query.get("resourceVersion")).toBe("2")
    }).pipe(Effect.provide(onStub({ watchTimeout: "90 seconds" })))))

  it.effect("a watch the server ends is opened again from the last version seen, and misses nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      const { queue } = yield* watchInto
      yield* takeUntil(queue, (c) => c._tag === "Listed")
      yield* kube.createRunnerPod(request("a"))
      const a = yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "a")
      expect(a._tag).toBe("Added")
      const seen = stub.watch.version
      endWatches(stub)
      // changed while no watch may be open: the next watch replays it from the version it asks for
      yield* kube.deletePod("a")
      yield* kube.createRunnerPod(request("b"))
      yield* takeUntil(queue, (c) => c._tag === "Deleted" && c.pod.name === "a")
      yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "b")
      const watches = watchRequests(stub)
      expect(watches).toHaveLength(2)
      expect(watches[1]!.query.get("resourceVersion")).toBe(String(seen))
      // no second listing, and so no second `Listed`
      expect(stub.requests.filter((r) => r.operation === "listPods")).toHaveLength(1)
      expect((yield* Queue.takeAll(queue)).length).toBe(0)
    }).pipe(Effect.provide(onStub()))))

  it.effect("a watch whose version expired (410) lists again and says so with Listed", () =>
    Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      const { queue } = yield* watchInto
      yield* takeUntil(queue, (c) => c._tag === "Listed")
      yield* kube.createRunnerPod(request("a"))
      yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "a")
      expireWatches(stub)
      expect(yield* Queue.take(queue)).toEqual({ _tag: "Listed" })
      expect(stub.requests.filter((r) => r.operation === "listPods")).toHaveLength(2)
      yield* kube.createRunnerPod(request("b"))
      yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "b")
      expect(watchRequests(stub).at(-1)!.query.get("resourceVersion")).toBe(String(stub.watch.version - 1))
    }).pipe(Effect.provide(onStub()))))

  it.effect("a refused watch is tried again after a pause, from the same version", () =>
    Effect.scoped(Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      stub.faults.push({ operation: "watchPods", status: 500 })
      const { queue } = yield* watchInto
      yield* takeUntil(queue, (c) => c._tag === "Listed")
      // the first watch request is refused; the next one waits for the back-off (TestClock)
      while (watchRequests(stub).length < 1) yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      while (watchRequests(stub).length < 2) yield* Effect.sleep(0).pipe(Effect.zipRight(TestClock.adjust("100 millis")))
      yield* kube.createRunnerPod(request("late"))
      yield* takeUntil(queue, (c) => c._tag === "Added" && c.pod.name === "late")
      const [first, second] = watchRequests(stub)
      expect(second!.query.get("resourceVersion")).toBe(first!.query.get("resourceVersion"))
    }).pipe(Effect.provide(onStub()))))
})

describe("KubeLive capacity from its watches", () => {
  const lists = (stub: { requests: ReadonlyArray<{ operation: string }> }) =>
    stub.requests.filter((r) => r.operation === "listPods" || r.operation === "listNodes").length
  const pool = (name = "scw-em-rv1") => Effect.map(Effect.flatMap(Kube, (k) => k.capacity), (cap) => cap.get(name))
  /** Reads capacity until a reading makes no request: both informers then follow the cluster by watch. */
  const untilFollowing = Effect.gen(function*() {
    const stub = yield* KubeStub
    while (true) {
      const before = lists(stub)
      yield* pool()
      if (lists(stub) === before) return
      yield* Effect.sleep("10 millis")
    }
  })
  /** Reads capacity until `ok` holds of the pool (the watch's event is on its way). */
  const until = (ok: (cap: ReturnType<typeof pool> extends Effect.Effect<infer A, any, any> ? A : never) => boolean) =>
    Effect.gen(function*() {
      while (!ok(yield* pool())) yield* Effect.sleep("10 millis")
    })

  it.live("after the first reading no cycle lists: pods and nodes are followed by watch, nodes' health too", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      addStubNode(stub, "n1", "scw-em-rv1", 2)
      expect((yield* pool())?.available).toBe(2)
      expect(lists(stub)).toBe(2)
      yield* untilFollowing
      const settled = lists(stub)
      expect(stub.requests.filter((r) => r.operation === "watchNodes")[0]?.query.get("labelSelector")).toBe("riseproject.dev/board")

      yield* kube.createRunnerPod(request("p1"))
      // the pod the cycle just created counts at once, from the create's answer or the watch, whichever came first
      expect((yield* pool())?.available).toBe(1)
      // a board the device plugin reports, a board cordoned, a board that loses its label: each arrives by watch
      addStubNode(stub, "n2", "scw-em-rv1", 3)
      yield* until((c) => c?.usable === 5)
      setStubNodeHealth(stub, "n2", { unschedulable: true })
      yield* until((c) => c?.usable === 2 && c.boards.find((b) => b.name === "n2")?.unusable === "cordoned")
      const n1 = stub.nodes.get("n1")!
      delete n1.metadata.labels["riseproject.dev/board"]
      nodeChanged(stub, "MODIFIED", n1)
      yield* until((c) => c?.boards.length === 1)
      expect(lists(stub), "no listing while the watches follow").toBe(settled)
      for (let i = 0; i < 20; i++) yield* pool()
      // the boards for phase 3 come from the same cache, in name order as a listing gives them
      addStubNode(stub, "a0", "scw-em-rv1", 1)
      yield* until((c) => c?.boards.length === 2)
      expect((yield* kube.listBoards).map((b) => [b.name, b.unusable])).toEqual([["a0", null], ["n2", "cordoned"]])
      expect(lists(stub)).toBe(settled)
    }).pipe(Effect.provide(onStub())))

  it.live("a broken watch is not trusted: capacity lists until the watch follows again, then stops listing", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      addStubNode(stub, "n1", "scw-em-rv1", 2)
      yield* untilFollowing
      // the node watch is ended and refused three times (pauses of 0.2, 0.4 and 0.8 s): while it is not open,
      // readings list the nodes, and see what the dead watch cannot
      for (let i = 0; i < 3; i++) stub.faults.push({ operation: "watchNodes", status: 500 })
      for (const w of [...stub.watch.watchers]) if (w.kind === "nodes") w.res.end()
      while (stub.requests.filter((r) => r.operation === "watchNodes").length < 2) yield* Effect.sleep("5 millis")
      const before = stub.requests.filter((r) => r.operation === "listNodes").length
      setStubNodeHealth(stub, "n1", { unschedulable: true })
      // (the client may take a moment to learn that the watch was refused; until then it trusts what it has)
      yield* until((c) => c?.usable === 0)
      expect(stub.requests.filter((r) => r.operation === "listNodes").length).toBeGreaterThan(before)
      yield* kube.createRunnerPod(request("p1"))
      yield* untilFollowing
      expect((yield* pool())?.active).toBe(1)
    }).pipe(Effect.provide(onStub())))
})

describe("KubeLive errors", () => {
  it.effect("an API server quoting the refused pod does not leak the JIT config", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      stub.faults.push({ operation: "createPod", status: 422, echoBody: true })
      const exit = yield* Effect.exit(kube.createRunnerPod(request("p1")))
      expect(stub.requests[0]?.body).toContain(JIT) // the server did see it...
      const text = JSON.stringify(exit) + String(exit)
      expect(text).not.toContain(JIT) // ...and our error does not repeat it
      expect(text).toContain("<redacted>")
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain('"status":422')
    }).pipe(Effect.provide(onStub())))

  it.effect("a pod the API server refuses is a 422", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const result = yield* Effect.either(kube.createRunnerPod(request("p1", "not a label value")))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "KubeError", operation: "createPod", status: 422 })
    }).pipe(Effect.provide(onStub())))

  it.effect("wrong credentials are a 401", () =>
    Effect.gen(function*() {
      const stub = yield* KubeStub
      const kube = yield* Effect.provide(
        Kube,
        KubeLive({ kubeconfigYaml: Redacted.make(stub.kubeconfig.replace(STUB_TOKEN, "wrong")) })
      )
      const result = yield* Effect.either(kube.listRunnerPods)
      expect(Either.isLeft(result) && result.left.status).toBe(401)
    }).pipe(Effect.provide(KubeStubLive)))

  it.effect("an unreachable API server is an error without a status", () =>
    Effect.gen(function*() {
      const stub = yield* KubeStub
      const yaml = stub.kubeconfig.replace(stub.url, "http://127.0.0.1:1")
      const kube = yield* Effect.provide(Kube, KubeLive({ kubeconfigYaml: Redacted.make(yaml) }))
      const result = yield* Effect.either(kube.capacity)
      expect(Either.isLeft(result) && result.left.status).toBeNull()
      // A failed call still counts: it cost a round trip (or a timeout).
      expect((yield* kube.callCounts).listNodes).toBe(1)
    }).pipe(Effect.provide(KubeStubLive)))

  it.live("a request that hangs times out", () =>
    Effect.gen(function*() {
      const kube = yield* Kube
      const stub = yield* KubeStub
      stub.faults.push({ operation: "listPods", status: 0, hang: true })
      const result = yield* Effect.either(kube.listRunnerPods)
      expect(Either.isLeft(result) && result.left).toMatchObject({ status: null, operation: "listPods" })
      expect(Either.isLeft(result) && result.left.message).toContain("timed out")
    }).pipe(Effect.provide(onStub({ requestTimeout: "200 millis" }))))
})

describe("KubeLive configuration", () => {
  it.effect("reads a kubeconfig file; YAML text wins over a path", () =>
    Effect.gen(function*() {
      const stub = yield* KubeStub
      addStubNode(stub, "n1", "pool-a", 3)
      const path = join(mkdtempSync(join(tmpdir(), "kube-")), "config")
      writeFileSync(path, stub.kubeconfig)
      const fromFile = yield* Effect.provide(Kube, KubeLive({ kubeconfigPath: path }))
      expect((yield* fromFile.capacity).get("pool-a")?.total).toBe(3)
      const both = yield* Effect.provide(
        Kube,
        KubeLive({ kubeconfigPath: "/nonexistent/kubeconfig", kubeconfigYaml: Redacted.make(stub.kubeconfig) })
      )
      expect((yield* both.capacity).get("pool-a")?.total).toBe(3)
    }).pipe(Effect.provide(KubeStubLive)))

  it.effect("a broken kubeconfig fails the layer without quoting it", () =>
    Effect.gen(function*() {
      const yaml = "apiVersion: v1\nusers:\n- name: x\n  user:\n    token: TOPSECRETTOKEN\n  - : [unbalanced"
      const result = yield* Effect.either(Effect.provide(Kube, KubeLive({ kubeconfigYaml: Redacted.make(yaml) })))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "KubeError", operation: "config" })
      expect(JSON.stringify(result)).not.toContain("TOPSECRETTOKEN")
      const missing = yield* Effect.either(Effect.provide(Kube, KubeLive({ kubeconfigPath: "/nonexistent/kubeconfig" })))
      expect(Either.isLeft(missing) && missing.left.message).toContain("/nonexistent/kubeconfig")
      // the same broken YAML in a file (KUBECONFIG, a cluster's kubeconfig): the parser's message would quote the
      // token's line; the error says where the fault is and nothing of the file
      const file = join(mkdtempSync(join(tmpdir(), "kube-")), "config")
      writeFileSync(file, yaml)
      const broken = yield* Effect.either(Effect.provide(Kube, KubeLive({ kubeconfigPath: file })))
      expect(Either.isLeft(broken) && broken.left.message).toMatch(/^cannot load the Kubernetes config from .*: not valid YAML at line \d+, column \d+$/)
      expect(JSON.stringify(broken)).not.toContain("TOPSECRETTOKEN")
      // a shape fault names the field, which holds no value
      writeFileSync(file, "apiVersion: v1\nclusters:\n- cluster: {}\n  name: c\n")
      const shape = yield* Effect.either(Effect.provide(Kube, KubeLive({ kubeconfigPath: file })))
      expect(Either.isLeft(shape) && shape.left.message).toContain("clusters[0].cluster.server is missing")
    }))
})

describe("KubeLive decoding", () => {
  const now = new Date("2026-04-20T12:00:00Z")

  it("a pod without a status is Pending; an unknown phase is Unknown", () => {
    expect(toPod({ metadata: { name: "p" } }, now)).toMatchObject({ name: "p", phase: "Pending", creationTime: now, nodeName: null })
    expect(toPod({ metadata: { name: "p" }, status: { phase: "Weird" } }, now).phase).toBe("Unknown")
  })

  it("only a True Ready condition gives a ready time", () => {
    const at = new Date("2026-04-20T11:00:00Z")
    const ready = (status: string) =>
      toPod({ metadata: { name: "p" }, status: { phase: "Running", conditions: [{ type: "Ready", status, lastTransitionTime: at }] } }, now)
    expect(ready("True").readyTransition).toEqual(at)
    expect(ready("False").readyTransition).toBeNull()
  })

  it("container states map to waiting, running and terminated", () => {
    const pod = toPod({
      metadata: { name: "p" },
      status: {
        phase: "Failed",
        initContainerStatuses: [{ name: "init", image: "i", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } }],
        containerStatuses: [
          { name: "runner", image: "i", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 2, reason: "Error", finishedAt: now } } },
          { name: "bare", image: "i", imageID: "", ready: false, restartCount: 0 }
        ]
      }
    }, now)
    expect(pod.initContainers[0]?.state).toEqual({ _tag: "Waiting", reason: "PodInitializing", message: "" })
    expect(pod.containers[0]?.state).toEqual({ _tag: "Terminated", exitCode: 2, reason: "Error", message: "", startedAt: null, finishedAt: now })
    expect(pod.containers[1]?.state).toEqual({ _tag: "Waiting", reason: "", message: "" })
  })

  it("new-style events take their times from eventTime and the series", () => {
    const e = toPodEvent({
      metadata: {},
      involvedObject: {},
      type: "Warning",
      reason: "FailedScheduling",
      message: "0/3 nodes are available",
      eventTime: "2026-04-20T11:00:00.123456Z" as never,
      series: { count: 7, lastObservedTime: "2026-04-20T11:30:00.000001Z" as never }
    })
    expect(e).toEqual({
      type: "Warning",
      reason: "FailedScheduling",
      message: "0/3 nodes are available",
      count: 7,
      firstSeen: new Date("2026-04-20T11:00:00.123Z"),
      lastSeen: new Date("2026-04-20T11:30:00.000Z")
    })
  })
})
