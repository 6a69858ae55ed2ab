// Why a domain rule refuses a request (a cron's, a run's, an assistant's), said as the API
// answers it: libs/http maps each kind to its status (invalid 422, missing 404, forbidden 403,
// conflict 409, over_limit 429). A missing cron, thread, run or assistant carries no text: the
// API says it with its one spelling (libs/http/errors.ts). No imports: every concern may refuse.

export type RefusalKind = 'invalid' | 'missing' | 'forbidden' | 'conflict' | 'over_limit';
export type Missing = 'cron' | 'thread' | 'run' | 'assistant' | 'occurrence';

export class Refusal extends Error {
  readonly kind: RefusalKind;
  /** For kind missing: what was not found (someone else's reads exactly as a missing one). */
  readonly missing: Missing | null;
  constructor(kind: RefusalKind, detail: string, missing: Missing | null = null) {
    super(detail);
    this.name = 'Refusal';
    this.kind = kind;
    this.missing = missing;
  }
}

/** A request field the rules refuse, named as the request has it: `body.<field>: <reason>`. */
export const invalid = (field: string, reason: string) => new Refusal('invalid', `body.${field}: ${reason}`);

/** Something the request names that does not exist for its caller (detail: only when more than "not found" is said). */
export const missing = (what: Missing, detail = '') => new Refusal('missing', detail, what);

export const forbidden = (detail: string) => new Refusal('forbidden', detail);

export const conflict = (detail: string) => new Refusal('conflict', detail);

export const overLimit = (detail: string) => new Refusal('over_limit', detail);
