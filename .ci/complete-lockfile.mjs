// npm records a package's optional platform builds (darwin, win32, musl, ...) in package-lock.json only when the
// registry it talks to can serve them. Behind a mirror that serves just this platform's builds, `npm install`
// leaves them out, and `npm ci` then refuses the lockfile as "out of sync". This adds the missing entries, marked
// optional and tagged with the os/cpu/libc their names give, so npm ci skips them on every other platform.
// Idempotent: run it after any `npm install` that changed the lockfile, and before `npm ci`.
import fs from "node:fs"

const lockPath = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(fs.readFileSync(lockPath, "utf8"))
const packages = lock.packages

const OSES = ["darwin", "win32", "linux", "android", "freebsd", "openbsd", "openharmony", "netbsd", "sunos", "aix"]
const CPUS = ["arm64", "x64", "ia32", "arm", "loong64", "ppc64", "riscv64", "s390x", "mips64el"]
const parts = (name) => name.replace(/^@[^/]+\//, "").split("-")
const osOf = (name) => OSES.find((os) => parts(name).includes(os))
const cpuOf = (name) => CPUS.find((cpu) => parts(name).includes(cpu))
const libcOf = (name) => (/-musl(eabihf)?$/.test(name) ? "musl" : /-(gnu|gnueabihf|glibc)$/.test(name) ? "glibc" : undefined)

let added = 0
for (const [key, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${key}/node_modules/${name}`
    const hoisted = `node_modules/${name}`
    if (packages[nested] !== undefined || packages[hoisted] !== undefined) continue
    const os = osOf(name)
    const cpu = cpuOf(name)
    // Only platform builds are safe to describe from their names; anything else is a real problem to look at.
    if (os === undefined || cpu === undefined) {
      console.error(`complete-lockfile: ${name} (optional dependency of ${key || "the project"}) is missing and is not a platform build`)
      process.exitCode = 1
      continue
    }
    const libc = os === "linux" ? libcOf(name) : undefined
    packages[hoisted] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(libc ? { libc: [libc] } : {})
    }
    added++
  }
}
if (added > 0) {
  const [root, ...rest] = Object.entries(packages)
  lock.packages = Object.fromEntries([root, ...rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))])
  fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + "\n")
}
console.log(`complete-lockfile: ${added} optional platform entries added`)
