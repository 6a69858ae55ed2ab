import type { RequestHandler } from 'express';
import { HttpError } from './errors.ts';

// Request input PostgreSQL cannot store, or that would break serialization, is refused here
// with a 422 naming where it is, before any route reads it:
// - NUL (U+0000): jsonb rejects "\u0000" and text columns reject the byte, so it used to fail
//   as a 500 deep in some INSERT;
// - unpaired UTF-16 surrogates ("\ud800" alone): not Unicode, so not valid UTF-8 text or jsonb;
// - objects and arrays nested deeper than MAX_JSON_DEPTH: JSON.parse copes (it is iterative)
//   but JSON.stringify, which every write does, overflows the stack thousands of levels down.
// The walk is iterative, so hostile depth cannot overflow the stack here either.

/** How deep objects and arrays may nest in a request body, counting the body itself as 1. */
export const MAX_JSON_DEPTH = 64;

/** Longest key shown in a detail (keys are user data; a detail should stay a line). */
const SHOWN_KEY_CHARS = 40;

/** Why a text cannot be stored, or null. */
function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain NUL characters (\\u0000)';
  if (!s.isWellFormed()) return 'must not contain unpaired UTF-16 surrogates (e.g. \\ud800)';
  return null;
}

/** A value met in the walk; the path is rebuilt from the parents only when a detail needs it. */
interface Visit {
  value: unknown;
  parent: Visit | null;
  key: string;
  depth: number;
}

const shorten = (s: string) => {
  const chars = Array.from(s);
  return chars.length > SHOWN_KEY_CHARS ? `${chars.slice(0, SHOWN_KEY_CHARS).join('')}…` : s;
};

/** `body.metadata.tags.0`, as zod issues name fields in validate.ts. */
function pathOf(visit: Visit, source: string): string {
  const keys: string[] = [];
  for (let v: Visit | null = visit; v?.parent; v = v.parent) keys.push(shorten(v.key));
  return [source, ...keys.reverse()].join('.');
}

/**
 * The first thing in a parsed request part that cannot be accepted, as a 422 detail naming its
 * path (e.g. `body.metadata.foo: must not contain NUL characters (\u0000)`), or null. Objects
 * and arrays are visited in document order, keys before what they hold.
 */
export function inputProblem(root: unknown, source: string): string | null {
  const stack: Visit[] = [{ value: root, parent: null, key: '', depth: 1 }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const { value } = visit;
    if (typeof value === 'string') {
      const why = textProblem(value);
      if (why) return `${pathOf(visit, source)}: ${why}`;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (visit.depth > MAX_JSON_DEPTH) return `${pathOf(visit, source)}: nested deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`;
    const entries = Object.entries(value);
    if (!Array.isArray(value)) {
      for (const [key] of entries) {
        const why = textProblem(key);
        // JSON.stringify escapes the offending character, so the detail shows it as \u0000.
        if (why) return `${pathOf(visit, source)}: key ${JSON.stringify(shorten(key))} ${why}`;
      }
    }
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i][1], parent: visit, key: entries[i][0], depth: visit.depth + 1 });
  }
  return null;
}

/** Why a URL path cannot be accepted (a %00 in any segment), or null. */
function pathProblem(path: string): string | null {
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      continue; // not UTF-8: the router answers its own 400 for a parameter, 404 otherwise
    }
    const why = textProblem(decoded);
    if (why) return `path: ${why}`;
  }
  return null;
}

/**
 * Refuses, with 422, a request whose path, query string or JSON body holds what cannot be
 * stored (see above). Mounted once before the resource routes, so every route is covered,
 * including the ones that serialize the body before validating it.
 */
export function refuseUnstorableInput(): RequestHandler {
  return (req, _res, next) => {
    const problem = pathProblem(req.path) ?? inputProblem(req.query, 'query') ?? inputProblem(req.body, 'body');
    if (problem) throw new HttpError(422, problem);
    next();
  };
}
