import { Schema } from "effect"

/** GitHub account kinds. The org app serves `Organization`, the personal app serves `User`. */
export const EntityType = Schema.Literal("Organization", "User")
export type EntityType = typeof EntityType.Type

/**
 * The account that owns a repository. `id` is GitHub's account id, which stays the same across renames and
 * reinstalls; `name` is the login at the time we saw it.
 */
export class Entity extends Schema.Class<Entity>("Entity")({
  type: EntityType,
  id: Schema.Number,
  name: Schema.String
}) {}

export const parseEntityType = (s: string): EntityType | undefined =>
  s === "Organization" || s === "User" ? s : undefined
