// Messages, names and formats in the page's language; dates in the site's time zone.
// Every string a person reads goes through t(key): a key missing from the catalogue is
// shown as the key and recorded in window.__i18nMissing (the browser tests fail on any).

const root = document.documentElement;
export const lang = root.lang || 'zh-CN';
export const tz = root.dataset.tz || 'UTC';
export const siteLang = root.dataset.siteLang || 'zh-CN';
const LANG_COOKIE = 'cfm_lang';

let messages = {};
const missing = new Set();
window.__i18nMissing = missing;

export async function loadCatalogue() {
  const r = await fetch(`/static/i18n/${lang}.json`, {cache: 'no-cache'});
  messages = await r.json();
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(messages, key);
}

export function t(key, params) {
  let text = messages[key];
  if (text === undefined) {
    missing.add(key);
    text = key;
  }
  if (params) {
    for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

// A label for an enumerated value (status, class, category...): the catalogue's word, or
// null when the catalogue has none (the caller then shows the raw value, marked as data).
export function label(prefix, value) {
  const key = `${prefix}.${value}`;
  return has(key) ? messages[key] : null;
}

// Site data (device, building, rule names) in the viewer's language: the site file's own
// words (in the site's language), or their translation when the page is in another one.
export function localized(entity, field = 'name') {
  if (!entity) return '';
  if (lang !== siteLang) {
    const tr = entity.translations && entity.translations[lang];
    if (tr && tr[field]) return tr[field];
  }
  return entity[field] ?? entity.id ?? '';
}

// The language switch in the header: remembered in a cookie, applied by reloading the page
// (the server renders the page in it).
export function wireLanguageSwitch() {
  for (const b of document.querySelectorAll('.lang-switch')) {
    b.addEventListener('click', () => {
      document.cookie = `${LANG_COOKIE}=${b.dataset.lang}; path=/; max-age=31536000; samesite=lax`;
      location.reload();
    });
  }
}

const formats = new Map();
function dtf(options) {
  const key = JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(lang, {timeZone: tz, ...options}));
  return formats.get(key);
}

export function dateTime(iso) {
  if (!iso) return '–';
  return dtf({year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false}).format(new Date(iso));
}
export function shortDateTime(iso) {
  if (!iso) return '–';
  return dtf({month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false}).format(new Date(iso));
}
export function timeOfDay(iso) {
  return dtf({hour: '2-digit', minute: '2-digit', hour12: false}).format(new Date(iso));
}
export function dayLabel(iso) {
  return dtf({month: 'short', day: 'numeric'}).format(new Date(iso));
}
export function month(key) {
  // "2026-11" -> "2026年11月" / "Nov 2026"
  const [y, m] = key.split('-').map(Number);
  return new Intl.DateTimeFormat(lang, {year: 'numeric', month: 'short', timeZone: 'UTC'}).format(new Date(Date.UTC(y, m - 1, 15)));
}
// Today's date at the site ("YYYY-MM-DD"), shifted by `days`.
export function siteDate(days = 0) {
  const d = new Date(Date.now() + days * 86400000);
  const parts = Object.fromEntries(dtf({year: 'numeric', month: '2-digit', day: '2-digit'}).formatToParts(d).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

export function number(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return new Intl.NumberFormat(lang, {maximumFractionDigits: digits}).format(value);
}
export function percent(rate) {
  if (rate === null || rate === undefined) return '–';
  return new Intl.NumberFormat(lang, {style: 'percent', maximumFractionDigits: 1}).format(rate);
}

export function ago(iso) {
  if (!iso) return t('common.never');
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  const rtf = new Intl.RelativeTimeFormat(lang, {numeric: 'auto'});
  if (s < 60) return rtf.format(-Math.max(0, Math.round(s)), 'second');
  if (s < 3600) return rtf.format(-Math.round(s / 60), 'minute');
  if (s < 86400) return rtf.format(-Math.round(s / 3600), 'hour');
  return dateTime(iso);
}

// A time limit in minutes (or working days) in words.
export function limit(minutes, workingDays) {
  if (workingDays) return t('dur.working_days', {n: workingDays});
  if (minutes === null || minutes === undefined) return '–';
  if (minutes < 120) return t('dur.minutes', {n: minutes});
  if (minutes % 1440 === 0 && minutes >= 2880) return t('dur.days', {n: minutes / 1440});
  return t('dur.hours', {n: number(minutes / 60)});
}
export function seconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 120) return t('dur.seconds', {n: number(s, 0)});
  return limit(Math.round(s / 60));
}
