/**
 * What phases 1 and 2 report: how many worker rows they changed, and the runner scopes of the workers they ended
 * (their runners may linger, so phase 3 lists those scopes for phase 4). The caller combines the two.
 */
export interface WorkerWrites {
  readonly written: number
  readonly ended: ReadonlySet<string>
}

export const noWrites: WorkerWrites = { written: 0, ended: new Set() }

export const combineWrites = (a: WorkerWrites, b: WorkerWrites): WorkerWrites => ({
  written: a.written + b.written,
  ended: new Set([...a.ended, ...b.ended])
})
