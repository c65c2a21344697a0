import { describe, expect, it } from "@effect/vitest"
import { buildFailureInfo, finishedAt, runnerStartedAt, sortEvents, type Pod, type PodEvent } from "../src/domain/Pod.ts"
import { nodeUnusable, parseQuantity, poolCapacities } from "../layers/kube/capacity.ts"
import type { BoardNode } from "../src/domain/Board.ts"

const t = (s: number) => new Date(Date.UTC(2026, 3, 20, 12, 0, s))

const pod = (over: Partial<Pod> = {}): Pod => ({
  name: "p",
  phase: "Running",
  nodeName: "n1",
  reason: "",
  message: "",
  creationTime: t(0),
  labels: {},
  containers: [],
  initContainers: [],
  readyTransition: null,
  ...over
})

describe("pod helpers", () => {
  it("finishedAt is the latest termination over main and init containers", () => {
    expect(finishedAt(pod())).toBeNull()
    const p = pod({
      initContainers: [{
        name: "init",
        state: { _tag: "Terminated", exitCode: 0, reason: "Completed", message: "", startedAt: t(1), finishedAt: t(2) }
      }],
      containers: [
        { name: "runner", state: { _tag: "Terminated", exitCode: 1, reason: "Error", message: "", startedAt: t(3), finishedAt: t(9) } },
        { name: "side", state: { _tag: "Running", startedAt: t(3) } }
      ]
    })
    expect(finishedAt(p)).toEqual(t(9))
  })

  it("runnerStartedAt prefers the running runner container, then the Ready transition", () => {
    expect(runnerStartedAt(pod({ containers: [{ name: "runner", state: { _tag: "Running", startedAt: t(5) } }], readyTransition: t(6) })))
      .toEqual(t(5))
    expect(runnerStartedAt(pod({ containers: [{ name: "runner", state: { _tag: "Running", startedAt: null } }], readyTransition: t(6) })))
      .toEqual(t(6))
    expect(runnerStartedAt(pod({ containers: [{ name: "other", state: { _tag: "Running", startedAt: t(5) } }] }))).toBeNull()
  })

  it("events sort by last sighting, falling back to the first", () => {
    const e = (reason: string, first: Date | null, last: Date | null): PodEvent => ({
      type: "Normal",
      reason,
      message: "",
      count: 1,
      firstSeen: first,
      lastSeen: last
    })
    const sorted = sortEvents([e("c", t(1), t(30)), e("a", t(2), null), e("none", null, null), e("b", t(0), t(10))])
    expect(sorted.map((x) => x.reason)).toEqual(["none", "a", "b", "c"])
  })

  it("a waiting container's reason stands in for a termination it never had", () => {
    const info = buildFailureInfo(
      pod({
        phase: "Pending",
        containers: [{ name: "runner", state: { _tag: "Waiting", reason: "ImagePullBackOff", message: "Back-off pulling" } }]
      }),
      "pod_stuck_pending",
      { events: [], logs: new Map(), errors: [] }
    )
    expect(info).toEqual({
      version: 2,
      reason: "pod_stuck_pending",
      containers: { runner: { exit_code: null, reason: "ImagePullBackOff", message: "Back-off pulling" } },
      events: []
    })
  })

  it("failure info writes RFC 3339 times and joins collection errors", () => {
    const info = buildFailureInfo(pod({ reason: "Evicted", message: "low disk" }), "pod_failed", {
      events: [{ type: "Warning", reason: "Evicted", message: "low disk", count: 2, firstSeen: t(1), lastSeen: t(4) }],
      logs: new Map(),
      errors: ["events: boom", "logs of runner: gone"]
    })
    expect(info.pod_reason).toBe("Evicted")
    expect(info.pod_message).toBe("low disk")
    expect(info.events).toEqual([
      { type: "Warning", reason: "Evicted", message: "low disk", count: 2, first_seen: "2026-04-20T12:00:01Z", last_seen: "2026-04-20T12:00:04Z" }
    ])
    expect(info.collect_error).toBe("events: boom; logs of runner: gone")
  })
})

describe("pool capacity", () => {
  const board = (name: string, pool: string, slots: number, unusable: string | null = null): BoardNode => ({
    name,
    pool,
    slots,
    ready: unusable === null ? "True" : "False",
    readySince: null,
    unusable,
    conditions: []
  })

  it("sums nodes per pool and subtracts only Pending and Running pods", () => {
    const cap = poolCapacities(
      [board("a1", "a", 2), board("a2", "a", 3), board("b1", "b", 1)],
      [
        { pool: "a", phase: "Running", nodeName: "a1" },
        { pool: "a", phase: "Pending", nodeName: null },
        { pool: "a", phase: "Succeeded", nodeName: "a1" },
        { pool: "a", phase: "Failed", nodeName: "a2" },
        { pool: "a", phase: "Unknown", nodeName: "a2" },
        { pool: "b", phase: "Running", nodeName: "b1" },
        { pool: "b", phase: "Pending", nodeName: null },
        { pool: "z", phase: "Pending", nodeName: null }
      ]
    )
    expect([...cap.values()].map(({ boards: _, ...p }) => p)).toEqual([
      { pool: "a", total: 5, usable: 5, active: 2, available: 3 },
      { pool: "b", total: 1, usable: 1, active: 2, available: -1 },
      { pool: "z", total: 0, usable: 0, active: 1, available: -1 }
    ])
    expect(cap.get("a")!.boards.map((b) => [b.name, b.busy])).toEqual([["a1", 1], ["a2", 0]])
  })

  it("counts only usable boards; a pod on an unusable board takes no usable slot", () => {
    const cap = poolCapacities(
      [board("a1", "a", 2), board("a2", "a", 3, "cordoned"), board("a3", "a", 1, "not ready (Unknown)")],
      [
        { pool: "a", phase: "Running", nodeName: "a2" },
        { pool: "a", phase: "Running", nodeName: "a3" },
        { pool: "a", phase: "Running", nodeName: "a1" },
        { pool: "a", phase: "Pending", nodeName: null }
      ]
    )
    const a = cap.get("a")!
    expect({ total: a.total, usable: a.usable, active: a.active, available: a.available }).toEqual({
      total: 6,
      usable: 2,
      active: 4,
      available: 0
    })
    expect(a.boards.map((b) => [b.name, b.busy, b.unusable])).toEqual([
      ["a1", 1, null],
      ["a2", 1, "cordoned"],
      ["a3", 1, "not ready (Unknown)"]
    ])
  })

  it.each([
    [{ ready: "True", unschedulable: false, taints: [] }, [], null],
    [{ ready: "False", unschedulable: false, taints: [] }, [], "not ready (False)"],
    [{ ready: "Unknown", unschedulable: false, taints: [] }, [], "not ready (Unknown)"],
    [{ ready: "True", unschedulable: true, taints: [] }, [], "cordoned"],
    [{ ready: "True", unschedulable: false, taints: [{ key: "gpu", value: "broken", effect: "NoSchedule" }] }, [], "taint gpu=broken:NoSchedule"],
    [{ ready: "True", unschedulable: false, taints: [{ key: "maint", effect: "NoExecute" }] }, [], "taint maint:NoExecute"],
    [{ ready: "True", unschedulable: false, taints: [{ key: "soft", effect: "PreferNoSchedule" }] }, [], null],
    [{ ready: "True", unschedulable: false, taints: [{ key: "gpu", value: "x", effect: "NoSchedule" }] }, [{ key: "gpu", operator: "Exists" }], null],
    [{ ready: "True", unschedulable: false, taints: [{ key: "gpu", value: "x", effect: "NoSchedule" }] }, [{ key: "gpu", value: "y" }], "taint gpu=x:NoSchedule"],
    [{ ready: "True", unschedulable: false, taints: [{ key: "gpu", value: "x", effect: "NoSchedule" }] }, [{ key: "gpu", value: "x", effect: "NoExecute" }], "taint gpu=x:NoSchedule"],
    [{ ready: "True", unschedulable: false, taints: [{ key: "any", effect: "NoExecute" }] }, [{ operator: "Exists" }], null]
  ] as const)("node %j with tolerations %j is unusable because %s", (node, tolerations, why) => {
    expect(nodeUnusable(node, tolerations)).toBe(why)
  })

  it.each([
    ["4", 4],
    [4, 4],
    ["0", 0],
    ["1k", 1000],
    ["2Ki", 2048],
    ["1500m", 1],
    ["", 0],
    ["lots", 0],
    [undefined, 0]
  ] as const)("quantity %s is %d", (q, n) => {
    expect(parseQuantity(q)).toBe(n)
  })
})
