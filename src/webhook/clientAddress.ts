import type { Headers } from "@effect/platform"
import { Option } from "effect"

/*
 * Who is asking, for per-client limits. By default that is the socket's peer: a client cannot choose it, while
 * `X-Forwarded-For` is whatever the client wrote. Behind reverse proxies that append the address they saw (an
 * ingress, a load balancer), the peer is the proxy, and the client is the entry that the outermost trusted proxy
 * appended: with `trustedProxyHops` proxies, the `trustedProxyHops`-th entry from the right. Entries left of it
 * came from the client and are ignored. IPv4 addresses mapped into IPv6 (`::ffff:10.0.0.1`) are shown as IPv4.
 */

const normalize = (address: string): string => address.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "")

export const clientAddress = (
  request: { readonly remoteAddress: Option.Option<string>; readonly headers: Headers.Headers },
  trustedProxyHops: number
): string => {
  const peer = Option.getOrElse(Option.map(request.remoteAddress, normalize), () => "unknown")
  const header = request.headers["x-forwarded-for"]
  if (trustedProxyHops <= 0 || header === undefined) return peer
  const hops = header.split(",").map(normalize).filter((a) => a !== "")
  if (hops.length === 0) return peer
  // fewer entries than trusted proxies: the leftmost is as far back as the chain goes
  return hops[Math.max(0, hops.length - trustedProxyHops)]!
}
