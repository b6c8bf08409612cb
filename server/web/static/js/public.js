// The public page (no login): measured rates next to the published targets, the service
// commitments, and the fault-report form with its receipt link.
import {label, limit, loadCatalogue, month, percent, t, wireLanguageSwitch} from './i18n.js';
import {h, put, raw} from './dom.js';
import {MAX_PHOTO, readPhoto} from './api.js';

const $ = (id) => document.getElementById(id);

function meets(value, target) {
  if (value === null || value === undefined) return '';
  return value >= target ? 'meets-target' : 'below-target';
}

function cell(field, value, target, labelKey) {
  return h('td', {class: `num ${meets(value, target)}`, 'data-label': t(labelKey), dataset: {k: field, v: value === null ? '' : String(value)}, text: percent(value)});
}

function figuresTable(id, rows, first, firstLabel, targets) {
  const head = [
    [firstLabel, ''],
    ['public.col.orders', 'num'],
    ['public.col.on_time', 'num'],
    ['public.col.pass', 'num'],
    ['public.col.satisfaction', 'num'],
  ];
  return h('table', {class: 'rtable', id},
    h('thead', {}, h('tr', {}, head.map(([k, c]) => h('th', {class: c, text: t(k)})))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {id: `${id}-${r.month || r.category}`},
      h('td', {class: 'first', 'data-label': t(firstLabel)}, first(r)),
      h('td', {class: 'num', 'data-label': t('public.col.orders'), dataset: {k: 'orders', v: String(r.orders)}, text: String(r.orders)}),
      cell('on_time_rate', r.on_time_rate, targets.on_time_rate, 'public.col.on_time'),
      cell('pass_rate', r.pass_rate, targets.pass_rate, 'public.col.pass'),
      cell('satisfaction_4_or_5', r.satisfaction_4_or_5, targets.satisfaction_4_or_5, 'public.col.satisfaction')))
      : h('tr', {}, h('td', {colspan: 5, class: 'empty', text: t('public.no_orders')}))));
}

function overallTile(id, labelKey, value, target, detail) {
  const state = value === null || value === undefined ? '' : value >= target ? 'meets' : 'misses';
  return h('div', {class: `tile ${state}`, id},
    h('div', {class: 'label', text: t(labelKey)}),
    h('div', {class: 'figure', dataset: {v: value === null ? '' : String(value)}, text: percent(value)}),
    h('div', {class: 'target', text: t('public.target', {target: percent(target)})}),
    h('div', {class: 'target', text: detail}));
}

async function showKpis() {
  const k = await (await fetch('/api/public/kpis')).json();
  const o = k.overall;
  $('measured-period').textContent = t('public.period', {from: month(k.from.slice(0, 7)), to: month(k.to.slice(0, 7))});
  put($('kpi-overall'), 
    overallTile('kpi-on-time', 'public.on_time', o.on_time_rate, k.targets.on_time_rate, t('public.n_resolved', {n: o.resolved})),
    overallTile('kpi-pass', 'public.pass', o.pass_rate, k.targets.pass_rate, t('public.n_verified', {n: o.verified})),
    overallTile('kpi-satisfaction', 'public.satisfaction', o.satisfaction_4_or_5, k.targets.satisfaction_4_or_5, t('public.n_ratings', {n: o.ratings})));
  put($('kpi-months'), figuresTable('kpi-month', k.by_month, (r) => month(r.month), 'public.col.month', k.targets));
  put($('kpi-categories'), figuresTable('kpi-cat', k.by_category,
    (r) => label('category', r.category) ?? raw(r.category), 'public.col.category', k.targets));
}

async function showCommitments() {
  const c = await (await fetch('/api/public/commitments')).json();
  put($('commitments'), ...c.commitments.map((x) => h('article', {class: 'commitment', id: `commit-${x.priority}`},
    h('h3', {}, h('span', {class: `badge pri-${x.priority}`, raw: true, text: x.priority}), t(`commit.${x.priority}.name`)),
    h('p', {class: 'muted small', text: t(`commit.${x.priority}.examples`)}),
    h('dl', {class: 'kv'},
      h('dt', {text: t('public.respond')}), h('dd', {class: 'respond', text: limit(x.respond_minutes)}),
      x.on_site_minutes ? [h('dt', {text: t('public.on_site')}), h('dd', {text: limit(x.on_site_minutes)})] : null,
      h('dt', {text: t('public.repair')}), h('dd', {class: 'repair', text: limit(x.repair_minutes, x.repair_working_days)})))));
}

// The form token proves the form was open for a person's minimum fill time (bots post at
// once); a person faster than that just waits the rest before it is sent.
let formToken = null, openedAt = Date.now(), minFill = 0;

function wireForm() {
  fetch('/api/public/form-token').then((r) => r.json()).then((tk) => {
    formToken = tk.form_token; minFill = tk.min_fill_seconds; openedAt = Date.now();
  });
  const form = $('report');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = $('report-result');
    out.className = ''; out.textContent = '';
    if (form.location.value.trim().length < 2) { out.className = 'error'; out.textContent = t('public.form.location_missing'); return; }
    if (form.description.value.trim().length < 5) { out.className = 'error'; out.textContent = t('public.form.description_missing'); return; }
    const f = new FormData(form), body = {};
    for (const [k, v] of f.entries()) if (typeof v === 'string' && v) body[k] = v;
    const file = f.get('photo');
    if (file && file.size) {
      if (!['image/jpeg', 'image/png'].includes(file.type)) { out.className = 'error'; out.textContent = t('form.photo_type'); return; }
      if (file.size > MAX_PHOTO) { out.className = 'error'; out.textContent = t('form.photo_size'); return; }
      body.photo = await readPhoto(file);
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    out.textContent = t('public.form.sending');
    if (formToken) {
      body.form_token = formToken;
      const wait = minFill * 1000 + 250 - (Date.now() - openedAt);
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    }
    try {
      const r = await fetch('/api/public/fault-reports', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
      const j = await r.json();
      if (!r.ok) {
        out.className = 'error';
        put(out, t('public.form.refused'), ' ', raw(j.message || (typeof j.detail === 'string' ? j.detail : '')));
        return;
      }
      out.textContent = '';
      form.reset();
      showReceipt(j);
    } finally {
      button.disabled = false;
    }
  });
}

function showReceipt(j) {
  const box = $('receipt-box');
  if (!j.id) { put(box, h('p', {text: t('public.form.received')})); box.hidden = false; return; }
  const url = new URL(j.receipt_url, location.href).href;
  put(box, 
    h('h3', {id: 'receipt-number', text: t('public.receipt.number', {id: j.id})}),
    h('p', {text: t('public.receipt.respond_by', {when: new Intl.DateTimeFormat(document.documentElement.lang, {timeZone: document.documentElement.dataset.tz, dateStyle: 'medium', timeStyle: 'short'}).format(new Date(j.respond_by))})}),
    h('p', {text: t('public.receipt.keep')}),
    h('p', {}, h('a', {class: 'button primary big', id: 'receipt-link', href: url, text: t('public.receipt.follow')})),
    h('p', {class: 'receipt-link', raw: true, text: url}));
  box.hidden = false;
  box.scrollIntoView({block: 'nearest'});
}

async function main() {
  await loadCatalogue();
  wireLanguageSwitch();
  wireForm();
  await Promise.all([showCommitments(), showKpis()]);
  document.body.dataset.ready = 'true';
}

main();
