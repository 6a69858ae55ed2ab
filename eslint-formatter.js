// `npm run lint`'s output: ESLint's own listing (grouped by file), then one line per file with
// its count of findings by rule, so the files still to fix read at a glance.
import path from 'node:path';
import { ESLint } from 'eslint';

/** @param {import('eslint').ESLint.LintResult[]} results */
export default async function format(results) {
  const stylish = await new ESLint().loadFormatter('stylish');
  const listing = await stylish.format(results);
  const lines = [];
  for (const r of results) {
    if (r.messages.length === 0) continue;
    /** @type {Record<string, number>} */
    const rules = {};
    for (const m of r.messages) rules[m.ruleId ?? 'parse'] = (rules[m.ruleId ?? 'parse'] ?? 0) + 1;
    const byRule = Object.entries(rules)
      .sort((a, b) => b[1] - a[1])
      .map(([rule, n]) => `${rule.replace('@typescript-eslint/', '')} ${n}`)
      .join(', ');
    lines.push(`${String(r.messages.length).padStart(4)}  ${path.relative(process.cwd(), r.filePath)}  (${byRule})`);
  }
  if (lines.length === 0) return listing;
  return `${listing}\nFindings by file:\n${lines.join('\n')}\n`;
}
