import net from 'node:net';

// The SSRF guard's address rules. A webhook URL is chosen by an API user, and the worker that
// sends it usually sits inside a private network next to the database and a cloud metadata
// service; so unless WEBHOOK_ALLOW_PRIVATE=true, nothing outside the public internet is a valid
// destination. Every IPv6 form that carries an IPv4 address (mapped, compatible, NAT64, 6to4) is
// judged by that IPv4 address, so ::ffff:127.0.0.1 is as loopback as 127.0.0.1.

interface Range {
  bytes: number[];
  bits: number;
  why: string;
}

const range = (bytes: number[], bits: number, why: string): Range => ({ bytes, bits, why });

const V4_RANGES: Range[] = [
  range([0, 0, 0, 0], 8, 'a "this network" address (0.0.0.0/8)'),
  range([10, 0, 0, 0], 8, 'a private address (10.0.0.0/8)'),
  // Carrier-grade NAT space; also holds a cloud metadata address (100.100.100.200).
  range([100, 64, 0, 0], 10, 'a shared or metadata address (100.64.0.0/10)'),
  range([127, 0, 0, 0], 8, 'a loopback address (127.0.0.0/8)'),
  // Cloud metadata services live at 169.254.169.254.
  range([169, 254, 0, 0], 16, 'a link-local or metadata address (169.254.0.0/16)'),
  range([172, 16, 0, 0], 12, 'a private address (172.16.0.0/12)'),
  range([192, 0, 0, 0], 24, 'a protocol-assignment or metadata address (192.0.0.0/24)'),
  range([192, 168, 0, 0], 16, 'a private address (192.168.0.0/16)'),
  range([198, 18, 0, 0], 15, 'a benchmarking address (198.18.0.0/15)'),
  range([224, 0, 0, 0], 4, 'a multicast address (224.0.0.0/4)'),
  range([240, 0, 0, 0], 4, 'a reserved or broadcast address (240.0.0.0/4)'),
];

const V6_RANGES: Range[] = [
  range(new Array<number>(16).fill(0), 128, 'the unspecified address (::)'),
  range([...new Array<number>(15).fill(0), 1], 128, 'a loopback address (::1)'),
  // Unique local addresses; AWS's IPv6 metadata service is fd00:ec2::254.
  range([0xfc, 0], 7, 'a private or metadata address (fc00::/7)'),
  range([0xfe, 0x80], 10, 'a link-local address (fe80::/10)'),
  range([0xfe, 0xc0], 10, 'a site-local address (fec0::/10)'),
  range([0xff, 0], 8, 'a multicast address (ff00::/8)'),
  // Teredo tunnels reach arbitrary IPv4 hosts through a relay: no legitimate webhook needs one.
  range([0x20, 0x01, 0, 0], 32, 'a Teredo tunnel address (2001::/32)'),
];

function inRange(addr: number[], r: Range): boolean {
  let bits = r.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i] & mask) !== (r.bytes[i] ?? 0)) return false;
  }
  return true;
}

function ipv4Bytes(text: string): number[] | null {
  return net.isIPv4(text) ? text.split('.').map(Number) : null;
}

/** The 16 bytes of an IPv6 address in any textual form (`::`, a trailing dotted quad, a zone id). */
export function ipv6Bytes(text: string): number[] | null {
  if (!net.isIPv6(text)) return null;
  let s = text.split('%')[0];
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const quad = ipv4Bytes(s.slice(lastColon + 1));
  if (quad) {
    // The quad stands for the last two groups: "::ffff:1.2.3.4" -> "::ffff", "::1.2.3.4" -> "::".
    tail = quad;
    s = s.slice(0, lastColon);
    if (s.endsWith(':')) s += ':';
  }
  const groupsWanted = quad ? 6 : 8;
  const [head, rest] = s.includes('::') ? s.split('::') : [s, null];
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const headGroups = parse(head);
  const restGroups = rest === null ? [] : parse(rest);
  const zeros = rest === null ? 0 : groupsWanted - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...new Array<number>(Math.max(0, zeros)).fill(0), ...restGroups];
  if (groups.length !== groupsWanted || groups.some((g) => Number.isNaN(g) || g < 0 || g > 0xffff)) return null;
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  return [...bytes, ...tail];
}

/** The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4), or null. */
function embeddedIpv4(b: number[]): number[] | null {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
  if (zeros(0, 10) && ((b[10] === 0xff && b[11] === 0xff) || (b[10] === 0 && b[11] === 0))) return b.slice(12);
  // 64:ff9b::a.b.c.d (well-known NAT64) and 64:ff9b:1::/48 (local NAT64)
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return b.slice(12);
  // 2002:AABB:CCDD::/48 (6to4)
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return null;
}

/**
 * Why an IP address may not receive webhooks (loopback, private, link-local, metadata ...), or
 * null when it is a public address. Anything that is not an IP address is refused too.
 */
export function forbiddenAddress(ip: string): string | null {
  const v4 = ipv4Bytes(ip);
  if (v4) return V4_RANGES.find((r) => inRange(v4, r))?.why ?? null;
  const v6 = ipv6Bytes(ip);
  if (!v6) return 'not an IP address';
  const special = V6_RANGES.find((r) => inRange(v6, r));
  if (special) return special.why;
  const inner = embeddedIpv4(v6);
  if (inner) {
    const why = V4_RANGES.find((r) => inRange(inner, r))?.why;
    return why ? why.replace(/^an? /, 'an IPv6 form of a ') : null;
  }
  return null;
}

/** A URL host without the brackets of an IPv6 literal. */
export const bareHost = (hostname: string): string => (hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname);

/**
 * Why a webhook URL is refused before anything is resolved: its host is a literal address that
 * may not receive webhooks. Hostnames pass here; they are checked after DNS resolution, when the
 * webhook is sent. (The WHATWG URL parser has already turned 2130706433, 0x7f.1 and 127.1 into
 * 127.0.0.1, so those shorthands cannot slip through.)
 */
export function literalAddressProblem(url: string): string | null {
  let host: string;
  try {
    host = bareHost(new URL(url).hostname);
  } catch {
    return null;
  }
  if (net.isIP(host) === 0) return null;
  const why = forbiddenAddress(host);
  return why ? `${host} is ${why}; webhooks go to public addresses only (WEBHOOK_ALLOW_PRIVATE=true allows it)` : null;
}

// The API validates request bodies with static zod schemas, which cannot be handed the
// configuration; the api role sets this once at startup from WEBHOOK_ALLOW_PRIVATE.
let allowPrivateAtCreate = false;

/** Whether webhook URLs on private addresses are accepted at create time (WEBHOOK_ALLOW_PRIVATE). */
export function allowPrivateWebhooks(allow: boolean): void {
  allowPrivateAtCreate = allow;
}

/** The create-time check the request schemas run: null when the URL is acceptable. */
export function webhookCreateProblem(url: string): string | null {
  return allowPrivateAtCreate ? null : literalAddressProblem(url);
}

// ---- credentials in webhook URLs ----
// A webhook URL may carry credentials (https://user:secret@host/hook): the delivery sends them
// (as Basic authorization), and nothing else ever shows them: API answers, the Run a webhook
// receives, ledger rows and log lines all get the URL without its userinfo.

/** Longest webhook URL accepted (characters). */
export const WEBHOOK_URL_MAX_LENGTH = 2048;

/** Whether a URL carries a username or a password. */
export function hasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/**
 * The URL without its userinfo (`https://user:secret@host/x` -> `https://host/x`); any other
 * string, or a URL without credentials, is answered exactly as given.
 */
export function withoutCredentials(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.username === '' && u.password === '') return url;
  u.username = '';
  u.password = '';
  return u.href;
}

/** The secrets a URL's userinfo holds, raw and percent-decoded, to scrub them from any text. */
export function credentialParts(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  const parts = new Set<string>();
  for (const p of [u.username, u.password]) {
    if (!p) continue;
    parts.add(p);
    try {
      parts.add(decodeURIComponent(p));
    } catch {
      // a malformed escape: the raw form is scrubbed
    }
  }
  return [...parts].filter((p) => p.length > 0);
}

/** Text with every occurrence of the URL's credentials replaced by `***`. */
export function scrubCredentials(text: string, url: string): string {
  let out = text;
  for (const secret of credentialParts(url).sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}

/**
 * Why a string is not an acceptable webhook URL before any address rule (null when it is): an
 * http(s) URL of at most WEBHOOK_URL_MAX_LENGTH characters whose authority is written out
 * (`http:///no-host` is read by URL parsers as host "no-host": refused, since it names no host).
 */
export function webhookUrlProblem(url: string): string | null {
  if (url.length > WEBHOOK_URL_MAX_LENGTH) return `must be at most ${WEBHOOK_URL_MAX_LENGTH} characters (got ${url.length})`;
  const shape = 'must be an http(s) URL with a host';
  // The scheme, "//" and a host right after it: no third slash, no backslash, no empty host.
  if (!/^https?:\/\/[^/\\?#\s]/i.test(url)) return shape;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return shape;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') return shape;
  // The host as written must be the host parsed: "http://@/x" or "http://user@" name none.
  const authority = url.slice(url.indexOf('//') + 2).split(/[/?#\\]/, 1)[0];
  const hostPart = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPart === '' || hostPart.startsWith(':')) return shape;
  return null;
}
