// The excerpts of a run's final values and error that its ledger row keeps (issue 14: "what did the
// 09:00 run say?" has an answer after the ephemeral thread and its run are gone). Computed in the
// finishing transaction (lifecycle.ts, settleOutcomes), so an excerpt must never make a finish
// fail: it is plain text, at most the byte budget, with no NUL character and no unpaired UTF-16
// surrogate, raw or as a JSON escape (PostgreSQL refuses the former in text, and the latter in
// jsonb should anyone cast an excerpt).

/** LEDGER_OUTPUT_EXCERPT_BYTES of this process (set at startup; 0 keeps nothing). */
let excerptBytes = 4096;

/** Sets the byte budget of every excerpt this process writes (LEDGER_OUTPUT_EXCERPT_BYTES; 0 = none). */
export function setLedgerExcerptBytes(bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`the ledger excerpt budget must be a whole number of bytes, got ${bytes}`);
  excerptBytes = bytes;
}

/** The byte budget in force. */
export const ledgerExcerptBytes = (): number => excerptBytes;

export interface Excerpt {
  /** JSON text of the value, cut to the budget (then not always parseable). */
  text: string;
  /** The whole JSON text was longer than the budget. */
  truncated: boolean;
}

// An escaped backslash (kept as a unit, so `\\u0000` is left alone), an escaped NUL, and escaped
// surrogates, a high one possibly followed by its low half.
const ESCAPES = /\\\\|\\u0000|\\u(d[89ab][0-9a-f]{2})(\\u(d[c-f][0-9a-f]{2}))?|\\ud[c-f][0-9a-f]{2}/gi;

/** Drops NULs and unpaired surrogates, raw or escaped; leaves everything else as it was. */
export function storableText(s: string): string {
  const raw = s.includes('\u0000') ? s.replaceAll('\u0000', '') : s;
  const wellFormed = raw.isWellFormed() ? raw : raw.toWellFormed().replaceAll('\ufffd', '');
  if (!wellFormed.includes('\\')) return wellFormed;
  return wellFormed.replace(ESCAPES, (m: string, high?: string, low?: string) => {
    if (m === '\\\\') return m;
    if (high !== undefined) return low !== undefined ? m : '';
    return '';
  });
}

/** The longest prefix of `s` whose UTF-8 encoding fits in `bytes`, cut between characters. */
function utf8Prefix(s: string, bytes: number): string {
  // Every UTF-16 code unit is at least one byte: no more than `bytes` of them can fit.
  const buf = Buffer.from(s.slice(0, bytes), 'utf8');
  if (buf.length <= bytes) return buf.toString('utf8');
  let end = bytes;
  // Back off to the first byte of a character (continuation bytes are 10xxxxxx).
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * A value's excerpt for the ledger: its JSON text, at most `bytes` UTF-8 bytes, storable as text.
 * null when nothing is kept (no value, a budget of 0). Never throws: a value JSON cannot write
 * (a cycle, a BigInt) is described instead.
 */
export function excerptOf(value: unknown, bytes: number = excerptBytes): Excerpt | null {
  if (bytes <= 0 || value === undefined || value === null) return null;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    json = JSON.stringify(`[not JSON: ${err instanceof Error ? err.message : String(err)}]`);
  }
  if (json === undefined) return null;
  const truncated = json.length > bytes || Buffer.byteLength(json, 'utf8') > bytes;
  const text = storableText(truncated ? utf8Prefix(json, bytes) : json);
  return { text, truncated };
}
