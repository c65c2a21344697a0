import { describe, expect, it } from "@effect/vitest"
import type { BoardSlots } from "../src/domain/Board.ts"
import type { BoardState, NodeOutcome } from "../src/domain/BoardQuarantine.ts"
import { boardFailures, decideQuarantine, quarantinedNodes, trustedCapacity } from "../src/scheduler/quarantine.ts"
import type { PoolCapacity } from "../src/services/Kube.ts"

const MIN = 60_000
const policy = { after: 3, windowMs: 60 * MIN, probationMs: 60 * MIN }
let seq = 0
const outcome = (node: string, atMin: number, reason: string | null, over: Partial<NodeOutcome> = {}): NodeOutcome => ({
  pod_name: `w${++seq}`,
  node,
  pool: "p",
  image: "img",
  status: reason === null ? "completed" : "failed",
  reason,
  at: new Date(atMin * MIN),
  ...over
})
const state = (node: string, standing: BoardState["state"], sinceMin: number, untilMin: number | null, probation = 3600): BoardState => ({
  node,
  pool: "p",
  state: standing,
  since: new Date(sinceMin * MIN),
  until: untilMin === null ? null : new Date(untilMin * MIN),
  probation_seconds: probation
})
const decide = (nowMin: number, states: ReadonlyArray<BoardState>, outcomes: ReadonlyArray<NodeOutcome>) =>
  decideQuarantine({ now: nowMin * MIN, states, outcomes, policy }).map((t) => [t.state.node, t.event.kind, t.state.state, t.event.probation_seconds])

describe("board failures: what points at a board, not at a job", () => {
  it.each([
    ["runner_never_registered", true],
    ["pod_stuck_pending", true],
    ["node_unreachable", true],
    ["runner_idle", false],
    ["pod_failed", false],
    ["pod_allocation_failure", false]
  ] as const)("%s counts: %s", (reason, counts) => {
    expect(boardFailures([outcome("n1", 1, reason)]).length).toBe(counts ? 1 : 0)
  })

  it("image_pull_failed counts only when another board of the pool ran the same image", () => {
    const pull = outcome("n1", 5, "image_pull_failed")
    expect(boardFailures([pull])).toEqual([])
    expect(boardFailures([pull, outcome("n1", 4, null)])).toEqual([]) // the same board: says nothing
    expect(boardFailures([pull, outcome("n2", 4, null, { image: "other" })])).toEqual([])
    expect(boardFailures([pull, outcome("n2", 4, null, { pool: "q" })])).toEqual([])
    expect(boardFailures([pull, outcome("n2", 4, null)])).toEqual([pull])
  })
})

describe("quarantine decisions", () => {
  it("quarantines at the third board failure within the window, with all three as evidence", () => {
    const two = [outcome("n1", 10, "runner_never_registered"), outcome("n1", 20, "node_unreachable")]
    expect(decide(30, [], two)).toEqual([])
    const three = [...two, outcome("n1", 30, "pod_stuck_pending"), outcome("n2", 30, "runner_never_registered")]
    const [t] = decideQuarantine({ now: 30 * MIN, states: [], outcomes: three, policy })
    expect(t!.state).toEqual(state("n1", "quarantined", 30, 90))
    expect(t!.event.evidence.map((e) => e.reason)).toEqual(["runner_never_registered", "node_unreachable", "pod_stuck_pending"])
  })

  it("failures older than the window, or job failures, do not count", () => {
    const outcomes = [outcome("n1", 0, "runner_never_registered"), outcome("n1", 70, "runner_idle"), outcome("n1", 80, "node_unreachable"), outcome("n1", 90, "node_unreachable")]
    expect(decide(90, [], outcomes)).toEqual([])
  })

  it("a quarantined board is released on trial when its probation ends, not before", () => {
    const q = state("n1", "quarantined", 0, 60)
    expect(decide(59, [q], [])).toEqual([])
    expect(decide(60, [q], [])).toEqual([["n1", "released", "trial", null]])
  })

  it("a trial that fails quarantines again with twice the probation; one that ends well trusts the board", () => {
    const trial = state("n1", "trial", 60, null)
    expect(decide(70, [trial], [outcome("n1", 65, "runner_never_registered")])).toEqual([["n1", "quarantined", "quarantined", 7200]])
    expect(decide(70, [trial], [outcome("n1", 65, null)])).toEqual([["n1", "trial_passed", "healthy", null]])
    // what happened before the trial began is not the trial's outcome
    expect(decide(70, [trial], [outcome("n1", 59, "runner_never_registered"), outcome("n1", 58, null)])).toEqual([])
    expect(decide(70, [trial], [outcome("n1", 65, "runner_idle")])).toEqual([])
  })

  it("probation doubles up to a week at most", () => {
    const trial = state("n1", "trial", 0, null, 5 * 24 * 3600)
    const [t] = decideQuarantine({ now: 10 * MIN, states: [trial], outcomes: [outcome("n1", 5, "node_unreachable")], policy })
    expect(t!.state.probation_seconds).toBe(7 * 24 * 3600)
  })

  it("a board trusted again counts only the failures since", () => {
    const healthy = state("n1", "healthy", 50, null)
    const outcomes = [outcome("n1", 40, "node_unreachable"), outcome("n1", 45, "node_unreachable"), outcome("n1", 55, "node_unreachable")]
    expect(decide(60, [healthy], outcomes)).toEqual([])
    expect(decide(60, [healthy], [...outcomes, outcome("n1", 56, "node_unreachable"), outcome("n1", 57, "node_unreachable")])).toEqual([
      ["n1", "quarantined", "quarantined", 3600]
    ])
  })
})

describe("trusted capacity", () => {
  const b = (name: string, slots: number, busy: number, unusable: string | null = null): BoardSlots => ({
    name,
    pool: "p",
    slots,
    busy,
    ready: "True",
    readySince: null,
    unusable,
    conditions: []
  })
  const cap = (boards: ReadonlyArray<BoardSlots>, waiting: number): ReadonlyMap<string, PoolCapacity> => {
    const usable = boards.filter((x) => x.unusable === null)
    const u = usable.reduce((s, x) => s + x.slots, 0)
    const busy = usable.reduce((s, x) => s + x.busy, 0)
    return new Map([["p", {
      pool: "p",
      total: boards.reduce((s, x) => s + x.slots, 0),
      usable: u,
      active: boards.reduce((s, x) => s + x.busy, 0) + waiting,
      available: u - busy - waiting,
      boards
    }]])
  }

  it("a quarantined board is no capacity and says until when; a board on trial offers one slot", () => {
    const before = cap([b("n1", 4, 0), b("n2", 4, 1), b("n3", 2, 0), b("n4", 1, 1, "cordoned")], 1)
    expect(before.get("p")!.available).toBe(8)
    const after = trustedCapacity(before, [state("n1", "quarantined", 0, 60), state("n3", "trial", 60, null), state("n9", "quarantined", 0, 60)]).get("p")!
    expect(after.usable).toBe(5)
    expect(after.available).toBe(3) // n2: 3 free, n3 on trial: 1, less the one pod waiting for a node
    expect(after.boards.map((x) => x.unusable)).toEqual(["quarantined until 1970-01-01T01:00:00.000Z", null, null, "cordoned"])
    expect(after.total).toBe(11)
  })

  it("a trial board already running its trial runner offers nothing more", () => {
    const after = trustedCapacity(cap([b("n1", 4, 1)], 0), [state("n1", "trial", 60, null)]).get("p")!
    expect(after.available).toBe(0)
  })

  it("runner pods avoid the quarantined boards of their pool only", () => {
    const states = [state("n2", "quarantined", 0, 60), state("n1", "quarantined", 0, 60), state("n3", "trial", 0, null), { ...state("m1", "quarantined", 0, 60), pool: "q" }]
    expect(quarantinedNodes(states, "p")).toEqual(["n1", "n2"])
    expect(quarantinedNodes(states)).toEqual(["m1", "n1", "n2"])
  })
})
