import { Data } from "effect"

/**
 * A start-up problem an operator fixes by changing the environment or the runner config file (a missing or invalid
 * variable, a bad file, a port in use): `main.ts` prints it as one line, then the process exits with status 2.
 */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}
