import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto"

/** An app key pair made at test time (no PEM is ever committed). PKCS#1, the format GitHub hands out. */
export interface GithubTestKey {
  readonly privateKeyPem: string
  readonly publicKey: KeyObject
}

const make = (): GithubTestKey => {
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" }
  })
  return { privateKeyPem: privateKey, publicKey: createPublicKey(privateKey) }
}

let keys: { readonly org: GithubTestKey; readonly personal: GithubTestKey } | undefined

/** One key pair per app, made once per test file (RSA generation takes a moment). */
export const githubTestKeys = () => (keys ??= { org: make(), personal: make() })
