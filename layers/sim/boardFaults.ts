import { Effect } from "effect"
import type { NodeReadiness } from "../../src/domain/Board.ts"
import type { KubeMemoryControlShape } from "../kube/memory.ts"

/*
 * Faulty boards: a property of one board rather than a share of events. A board whose runners never register (a
 * broken kernel, no network: every runner pod it starts stays up and silent), and a board that goes NotReady (its
 * Ready condition False, or Unknown when its kubelet is gone) from a moment on, for a while or for good. The
 * readiness schedule is applied by the world's housekeeping, so under the deterministic simulation it changes
 * between steps, never inside a scheduler cycle's own reads.
 */

export type BoardFault =
  | { readonly node: string; readonly kind: "noRegister" }
  | {
    readonly node: string
    readonly kind: "notReady"
    /** what the Ready condition shows meanwhile */
    readonly ready: Exclude<NodeReadiness, "True">
    /** simulated ms after the world's start */
    readonly atMs: number
    /** simulated ms it lasts; null: for good */
    readonly forMs: number | null
  }

/** A duration as `SIM_NODES` writes it: `90`, `90s`, `10m`, `2h` (simulated). */
const parseDuration = (text: string): number | undefined => {
  const m = /^(\d+)(s|m|h)?$/.exec(text)
  if (m === null) return undefined
  return Number(m[1]) * (m[2] === "h" ? 3_600_000 : m[2] === "m" ? 60_000 : 1000)
}

/**
 * One board fault from `SIM_NODES`, `<node>:<fault>`: `noregister`, or `notready[@AT][+FOR]` / `unknown[@AT][+FOR]`
 * (from AT after the start, default at once; for FOR, default for good). A string says what is wrong.
 */
export const parseBoardFault = (node: string, text: string): BoardFault | string => {
  if (text === "noregister") return { node, kind: "noRegister" }
  const m = /^(notready|unknown)(?:@([0-9]+[smh]?))?(?:\+([0-9]+[smh]?))?$/.exec(text)
  if (m === null) return `"${node}:${text}": the fault is noregister, notready[@AT][+FOR] or unknown[@AT][+FOR] (AT, FOR like 90s, 10m, 2h)`
  const atMs = m[2] === undefined ? 0 : parseDuration(m[2])
  const forMs = m[3] === undefined ? null : parseDuration(m[3])
  if (atMs === undefined || forMs === undefined || forMs === 0) return `"${node}:${text}": a duration is 1 or more, like 90s, 10m, 2h`
  return { node, kind: "notReady", ready: m[1] === "unknown" ? "Unknown" : "False", atMs, forMs }
}

/** `SIM_NODES` again for one fault (the banner, the docs' examples). */
export const describeBoardFault = (f: BoardFault): string => {
  if (f.kind === "noRegister") return `${f.node}: runners never register`
  const at = f.atMs === 0 ? "from the start" : `after ${Math.round(f.atMs / 1000)} s`
  const lasts = f.forMs === null ? "for good" : `for ${Math.round(f.forMs / 1000)} s`
  return `${f.node}: ${f.ready === "Unknown" ? "Unknown (kubelet gone)" : "NotReady"} ${at}, ${lasts}`
}

/** Is the board NotReady by its schedule at `elapsedMs` (simulated) after the start? */
const dueNotReady = (f: Extract<BoardFault, { kind: "notReady" }>, elapsedMs: number) =>
  elapsedMs >= f.atMs && (f.forMs === null || elapsedMs < f.atMs + f.forMs)

/**
 * The readiness schedule: at each call, every scheduled board that should change does. Returns the changes made,
 * one line each (for the world's fault events).
 */
export const makeReadinessSchedule = (faults: ReadonlyArray<BoardFault>, kube: Pick<KubeMemoryControlShape, "setNodeHealth">) => {
  const scheduled = faults.filter((f): f is Extract<BoardFault, { kind: "notReady" }> => f.kind === "notReady")
  const down = new Set<string>()
  const apply = (elapsedMs: number) =>
    Effect.gen(function*() {
      const changes: Array<{ readonly node: string; readonly down: boolean; readonly ready: NodeReadiness }> = []
      for (const f of scheduled) {
        const due = dueNotReady(f, elapsedMs)
        if (due === down.has(f.node)) continue
        const ready: NodeReadiness = due ? f.ready : "True"
        if (!(yield* kube.setNodeHealth(f.node, { ready }))) continue
        if (due) {
          down.add(f.node)
        } else down.delete(f.node)
        changes.push({ node: f.node, down: due, ready })
      }
      return changes
    })
  return { apply }
}
