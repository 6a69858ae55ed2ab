// @ts-check
// A schedule and timezone with what they mean, live: cronstrue's words as you type and, where
// the server offers POST /runs/crons/preview, its next fire times (with the DST cases it marks).
import { api, session } from '../api.js';
import { h, put } from '../dom.js';
import { describeSchedule, fireTimeMarks, formatTime } from '../format.js';
import { messageOf } from '../ui.js';

/** @typedef {import('../../types.ts').Preview} Preview */
/** @typedef {import('../../types.ts').FireTime} FireTime */

/** @type {HTMLDataListElement | null} */
let zones = null;
/** Every IANA zone the browser knows, for the timezone field's suggestions. */
function zoneList() {
  if (!zones) {
    zones = h(
      'datalist',
      { id: 'timezones' },
      (Intl.supportedValuesOf?.('timeZone') ?? ['UTC']).map((z) => h('option', { value: z })),
    );
  }
  return zones;
}

/**
 * Whether the browser knows this IANA zone (the server decides; this only spares it half-typed names).
 * @param {string} tz
 */
function knownZone(tz) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function scheduleEditor(initial = { schedule: '', timezone: '' }) {
  const schedule = h('input', {
    id: 'schedule',
    name: 'schedule',
    value: initial.schedule,
    required: true,
    placeholder: '0 9 * * 1-5',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const timezone = h('input', { id: 'timezone', name: 'timezone', value: initial.timezone ?? '', list: 'timezones', placeholder: 'UTC', autocomplete: 'off' });
  const words = h('p', { class: 'describe', id: 'schedule-words' });
  const preview = h('div', { class: 'preview', id: 'schedule-preview' });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let asked = 0;

  function update() {
    const expr = schedule.value.trim();
    const described = describeSchedule(expr);
    words.textContent = expr ? (described ?? 'not a cron expression cronstrue understands (5 fields, or 6 with seconds first)') : '';
    words.classList.toggle('error', Boolean(expr) && !described);
    clearTimeout(timer);
    if (!session.features.preview) {
      put(preview, h('p', { class: 'muted' }, 'The next fire times show on the cron once saved (this server has no preview endpoint).'));
      return;
    }
    const tz = timezone.value.trim();
    if (!described || (tz && !knownZone(tz))) {
      put(preview, tz && described && !knownZone(tz) ? h('p', { class: 'error' }, `"${tz}" is not a timezone this browser knows`) : null);
      return;
    }
    // Asked only for what reads as a schedule, after typing pauses: no request per keystroke.
    timer = setTimeout(() => void showPreview(expr), 300);
  }

  /**
   * The server's next fire times for expr; a failure shows in the preview (this never rejects).
   * @param {string} expr
   */
  async function showPreview(expr) {
    const mine = ++asked;
    try {
      /** @type {(Partial<Preview> & { times?: (string | FireTime)[] }) | null} */
      const answer = await api('POST', '/runs/crons/preview', { schedule: expr, timezone: timezone.value.trim() || null, count: 5 });
      if (answer?.description) words.textContent = answer.description;
      if (mine !== asked) return;
      const times = answer?.next ?? answer?.times ?? [];
      put(
        preview,
        h('p', { class: 'muted' }, `Next fire times${answer?.timezone ? ` (${answer.timezone})` : ''}:`),
        h(
          'ul',
          { class: 'times' },
          times.map((t) => {
            const utc = typeof t === 'string' ? t : t.utc;
            const marks = fireTimeMarks(t);
            return h(
              'li',
              {},
              formatTime(utc, answer?.timezone || timezone.value.trim() || 'UTC'),
              marks.length ? [' ', h('span', { class: 'badge st-warn' }, marks.join('; '))] : null,
            );
          }),
        ),
      );
    } catch (err) {
      if (mine === asked) put(preview, h('p', { class: 'error' }, messageOf(err)));
    }
  }

  schedule.addEventListener('input', update);
  timezone.addEventListener('input', update);
  update();

  return {
    element: h(
      'div',
      { class: 'schedule-editor' },
      h('label', { class: 'field' }, h('span', {}, 'Schedule'), schedule),
      h('label', { class: 'field' }, h('span', {}, 'Timezone'), timezone),
      zoneList(),
      words,
      preview,
    ),
    value: () => ({ schedule: schedule.value.trim(), timezone: timezone.value.trim() }),
  };
}
