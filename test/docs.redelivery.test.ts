import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

/*
 * GitHub does not send a failed webhook delivery again on its own (issue 17): the docs and the comments must not
 * promise that it does, and the runbook must say what recovers a lost delivery.
 */

const root = join(import.meta.dirname, "..")
const walk = (dir: string): Array<string> =>
  readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (name === "node_modules" || name.startsWith(".")) return []
    return statSync(join(root, path)).isDirectory() ? walk(path) : /\.(md|ts)$/.test(name) ? [path] : []
  })

describe("what the docs say about GitHub's re-delivery", () => {
  it("nothing claims GitHub re-delivers by itself after a 500", () => {
    const files = ["README.md", ...walk("docs"), ...walk("src"), ...walk("layers"), ...walk("deploy")]
    const claim = /(so|then|makes|and) GitHub (re-?delivers|re-?deliver|retries)|GitHub (re-?delivers|retries) (it|the delivery|after)/i
    const offenders = files.filter((f) => claim.test(readFileSync(join(root, f), "utf8").replace(/\s*\n\s*(\*\s*)?/g, " ")))
    expect(offenders).toEqual([])
  })

  it("the runbook for a queued job points to the redelivery pass", () => {
    const operating = readFileSync(join(root, "docs/operating.md"), "utf8")
    const section = operating.slice(operating.indexOf("#### A job stays queued"), operating.indexOf("#### A runner never registers"))
    expect(section).toContain("SCHEDULER_REDELIVERY_INTERVAL")
    expect(section).toContain("does not send a")
  })
})
