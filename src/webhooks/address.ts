// Which addresses outbound webhooks may reach. Endpoint URLs come through the
// API, so without this policy a caller could point Landlord at its own network
// (loopback, cloud metadata at 169.254.169.254, private ranges) and read the
// answer in the delivery log. Only public unicast addresses are allowed, plus
// the networks WEBHOOK_ALLOWED_NETWORKS opens. The undici Agent below connects
// only to addresses its own lookup has just vetted, so a name that resolves
// elsewhere between check and connection (DNS rebinding) gains nothing.
import dns from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent } from 'undici'

type Ip = ipaddr.IPv4 | ipaddr.IPv6

export interface AddressPolicy {
  /** WEBHOOK_ALLOWED_NETWORKS, parsed: reachable whatever their range. */
  readonly allowed: ReadonlyArray<readonly [Ip, number]>
}

/** `networks` are CIDRs, already validated by config.ts. */
export function addressPolicy(networks: readonly string[]): AddressPolicy {
  return Object.freeze({ allowed: Object.freeze(networks.map((cidr) => ipaddr.parseCIDR(cidr))) })
}

/** Why an address is refused: the address (IPv4-mapped ones unwrapped) and its range. */
export interface Refusal {
  address: string
  range: string
}

// ipaddr.js range names (https://github.com/whitequark/ipaddr.js#ipv4-and-ipv6-ranges)
// as people say them. Any range but `unicast` is refused, named or not.
const RANGE_NAMES: Record<string, string> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private network',
  reserved: 'reserved',
  uniqueLocal: 'unique local',
  ipv4Mapped: 'IPv4-mapped',
  rfc6145: 'IPv4-translated',
  rfc6052: 'NAT64',
  '6to4': '6to4',
  teredo: 'Teredo',
  deprecatedSiteLocal: 'site-local',
}

export function refusalMessage(refusal: Refusal): string {
  return `address ${refusal.address} is not allowed (${refusal.range})`
}

/** Why `address` may not be reached under `policy`, or undefined when it may. */
export function vetAddress(policy: AddressPolicy, address: string): Refusal | undefined {
  let parsed: Ip
  let ip: Ip
  try {
    parsed = ipaddr.parse(address)
    ip = ipaddr.process(address) // ::ffff:7f00:1 is 127.0.0.1
  } catch {
    return { address, range: 'not an IP address' }
  }
  const within = (candidate: Ip) => policy.allowed.some(([net, bits]) => net.kind() === candidate.kind() && candidate.match(net, bits))
  if (within(ip) || within(parsed)) return undefined
  const range = ip.range()
  return range === 'unicast' ? undefined : { address: ip.toString(), range: RANGE_NAMES[range] ?? range }
}

/** The address a URL's hostname spells when it is an IP literal (`[::1]` included). */
export function literalAddress(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
  return isIP(bare) === 0 ? undefined : bare
}

export type Resolver = (hostname: string) => Promise<dns.LookupAddress[]>

export const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true })

/**
 * Vets a URL's host at registration: an IP literal as it is, a name by every
 * address it resolves to now. A name that does not resolve (or not within
 * `timeoutMs`) passes: each delivery vets it again.
 */
export async function vetHost(policy: AddressPolicy, hostname: string, resolve: Resolver = systemResolver, timeoutMs = 3000): Promise<Refusal | undefined> {
  const literal = literalAddress(hostname)
  if (literal !== undefined) return vetAddress(policy, literal)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<dns.LookupAddress[]>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout([]), timeoutMs)
  })
  try {
    const addresses = await Promise.race([resolve(hostname).catch(() => []), timeout])
    for (const { address } of addresses) {
      const refusal = vetAddress(policy, address)
      if (refusal) return refusal
    }
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

/** What a connection fails with when every address of its host is refused. */
export class AddressRefusedError extends Error {
  readonly code = 'ERR_LANDLORD_ADDRESS_REFUSED'
  constructor(readonly refusal: Refusal) {
    super(refusalMessage(refusal))
    this.name = 'AddressRefusedError'
  }
}

/**
 * A `net.connect` lookup that resolves the name itself and hands back only
 * the addresses `policy` allows: the socket connects to what was vetted. Node
 * asks for every address (`all`) when it races IPv4 and IPv6, one otherwise.
 */
export function vettedLookup(policy: AddressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0)
    resolve(hostname).then(
      (addresses) => {
        let refusal: Refusal | undefined
        const vetted = addresses.filter((a) => {
          if (family !== 0 && a.family !== family) return false
          const refused = vetAddress(policy, a.address)
          refusal ??= refused
          return refused === undefined
        })
        const [first] = vetted
        if (first === undefined) {
          const err: NodeJS.ErrnoException = refusal ? new AddressRefusedError(refusal) : Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
          callback(err, '', 0)
        } else if (options.all) callback(null, vetted)
        else callback(null, first.address, first.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    )
  }
}

/**
 * An undici Agent whose every connection goes through `vettedLookup`. An IP
 * literal host never reaches a lookup (net.connect skips it): vet those with
 * `vetAddress` before the request.
 */
export function vettedAgent(policy: AddressPolicy, resolve: Resolver = systemResolver): Agent {
  return new Agent({ connect: { lookup: vettedLookup(policy, resolve) } })
}

const shared = new WeakMap<readonly string[], { policy: AddressPolicy; agent: Agent }>()

/**
 * One policy and Agent per allow-list, so deliveries share a connection pool
 * whose sockets were all vetted. Never closed: undici unrefs idle sockets, so
 * they do not hold the process open.
 */
export function deliveryTransport(networks: readonly string[]): { policy: AddressPolicy; agent: Agent } {
  let transport = shared.get(networks)
  if (!transport) {
    const policy = addressPolicy(networks)
    transport = { policy, agent: vettedAgent(policy) }
    shared.set(networks, transport)
  }
  return transport
}
