/**
 * The weekly usage report under `--simulate`, as `npm start` runs it: the bundled entrypoint (`all --simulate`) on a
 * real PostgreSQL, load posted through the simulation's control API, and the CSV read from the scheduler port. Its
 * figures must agree with what the same process shows of its jobs and workers (`/jobs.json`, `/workers.json`),
 * recomputed here from those rows.
 */
import { describe, expect, it } from "vitest"
import { percentileDisc } from "../src/domain/WeeklyUsage.ts"
import { processSuite, startSimulated } from "./support/processSuite.ts"

const suite = processSuite({ stopGraceMs: 20_000 })

const getJson = async (url: string): Promise<any> => (await fetch(url)).json()

/** A CSV of plain fields (the report quotes only fields holding a comma, quote or line break; these hold none). */
const parseCsv = (text: string) => {
  const [header, ...lines] = text.trimEnd().split("\r\n")
  const keys = header!.split(",")
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [keys[i]!, v])))
}

describe("weekly usage under --simulate", () => {
  it("load posted through the control API shows in the CSV as the jobs and workers say", async () => {
    const { control, scheduler } = await startSimulated(suite, "weekly_simulate", {
      // two boards for five jobs: some wait for a board
      SIM_NODES: "scw-em-rv1=2x1",
      SIM_SPEED: "20"
    })
    const posted: Array<number> = []
    for (const [owner, count] of [["acme", 3], ["octo-org", 2]] as const) {
      const res = await fetch(`${control}/sim/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ owner, ownerType: "Organization", repo: `${owner}/app`, labels: ["ubuntu-24.04-riscv"], durationSeconds: 40, count })
      })
      expect(res.status).toBe(200)
      posted.push(...((await res.json()) as { jobIds: Array<number> }).jobIds)
    }
    // every job completed, as the scheduler sees it
    let jobs: Array<any> = []
    for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
      jobs = await getJson(`${scheduler}/jobs.json`)
      if (jobs.length === posted.length && jobs.every((j) => j.status === "completed")) break
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(jobs.map((j) => j.status)).toEqual(posted.map(() => "completed"))
    // workers complete on the next cycle after their pod ends
    let workers: Array<any> = []
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      workers = await getJson(`${scheduler}/workers.json`)
      if (workers.length > 0 && workers.every((w) => w.status === "completed" || w.status === "failed")) break
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(workers.every((w) => w.completed_at !== undefined)).toBe(true)

    const csv = await fetch(`${scheduler}/stats/weekly-usage.csv?weeks=1`)
    expect(csv.status).toBe(200)
    expect(csv.headers.get("content-type")).toContain("text/csv")
    const rows = parseCsv(await csv.text())
    expect(rows.map((r) => r.entity_name).sort()).toEqual(["acme", "octo-org"])

    // the same figures, recomputed from the rows the scheduler shows
    const byPod = new Map(workers.map((w) => [w.pod_name, w]))
    const totalBoard = workers.reduce((s, w) => s + (w.running_at === undefined ? 0 : Date.parse(w.completed_at) - Date.parse(w.running_at)), 0) / 1000
    for (const row of rows) {
      const mine = jobs.filter((j) => j.entity_name === row.entity_name)
      const myWorkers = workers.filter((w) => w.entity_name === row.entity_name)
      const waits = mine.flatMap((j) => {
        const w = byPod.get(j.k8s_pod)
        return w?.running_at === undefined ? [] : [Math.max(0, (Date.parse(w.running_at) - Date.parse(j.created_at)) / 1000)]
      }).sort((a, b) => a - b)
      const board = myWorkers.reduce((s, w) => s + (w.running_at === undefined ? 0 : Date.parse(w.completed_at) - Date.parse(w.running_at)), 0) / 1000
      expect(row).toMatchObject({
        entity_type: "Organization",
        jobs: String(mine.length),
        jobs_run: String(mine.filter((j) => j.k8s_pod !== undefined).length),
        jobs_failed: "0",
        board_minutes: (Math.round(board / 6) / 10).toFixed(1),
        share: (board / totalBoard).toFixed(4),
        wait_p50_seconds: String(Math.round(percentileDisc(waits, 0.5)!)),
        wait_p95_seconds: String(Math.round(percentileDisc(waits, 0.95)!)),
        wait_max_seconds: String(Math.round(waits.at(-1)!)),
        at_cap_minutes: "0.0"
      })
      expect(Number(row.jobs_run)).toBe(Number(row.jobs))
      expect(board).toBeGreaterThan(0)
    }
    // someone waited for a board: five jobs on two boards
    expect(Math.max(...rows.map((r) => Number(r.wait_max_seconds)))).toBeGreaterThan(0)
  }, 240_000)
})
