/** `npm run trace -- ...`: the trace CLI on its own (also `main.ts trace ...`). */
import { traceMain } from "./trace.ts"

await traceMain(process.argv.slice(2))
