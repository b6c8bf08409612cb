// A reporter's receipt: the order's progress; once resolved, "fixed" with a 1-5 rating (the
// public satisfaction figure) or "not fixed" (reopened). The token is the URL's fragment.
import {dateTime, loadCatalogue, t, wireLanguageSwitch} from './i18n.js';
import {h, put, raw, starInputs, stars} from './dom.js';

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.hash.replace(/^#/, ''));
const STEPS = ['open', 'in_progress', 'resolved', 'verified'];

function stepIndex(status) {
  if (status === 'assigned' || status === 'in_progress') return 1;
  if (status === 'reopened') return 1;
  return Math.max(0, STEPS.indexOf(status));
}

function render(r) {
  const at = stepIndex(r.status);
  put($('receipt-body'), 
    h('p', {id: 'receipt-order', class: 'brand-name', text: t('receipt.order', {id: r.id})}),
    h('p', {}, h('span', {class: `badge wo-${r.status}`, id: 'receipt-status', dataset: {status: r.status}, text: t(`receipt.status.${r.status}`)})),
    h('ol', {class: 'steps', id: 'receipt-steps'}, STEPS.map((s, i) => h('li', {class: i <= at ? 'done' : '', text: t(`receipt.step.${s}`)}))),
    h('dl', {class: 'kv'},
      h('dt', {text: t('receipt.location')}), h('dd', {raw: true, text: r.location}),
      h('dt', {text: t('receipt.description')}), h('dd', {raw: true, text: r.description}),
      h('dt', {text: t('receipt.reported')}), h('dd', {text: dateTime(r.created_at)}),
      h('dt', {text: t('receipt.respond_by')}), h('dd', {text: dateTime(r.respond_due_at)}),
      h('dt', {text: t('receipt.due')}), h('dd', {text: dateTime(r.due_at)}),
      r.accepted_at ? [h('dt', {text: t('receipt.accepted')}), h('dd', {text: dateTime(r.accepted_at)})] : null,
      r.resolved_at ? [h('dt', {text: t('receipt.resolved')}), h('dd', {text: dateTime(r.resolved_at)})] : null,
      r.resolution_note ? [h('dt', {text: t('receipt.note')}), h('dd', {raw: true, id: 'receipt-note', text: r.resolution_note})] : null,
      r.satisfaction ? [h('dt', {text: t('receipt.your_rating')}), h('dd', {id: 'receipt-rating'}, stars(r.satisfaction))] : null),
    r.status === 'verified' ? h('p', {class: 'ok', text: t('receipt.thanks')}) : null,
    r.status === 'reopened' ? h('p', {text: t('receipt.reopened')}) : null);
  $('confirm-box').hidden = !r.can_confirm;
}

async function load() {
  if (!token) { put($('receipt-body'), h('p', {class: 'error', text: t('receipt.no_token')})); return; }
  const res = await fetch('/api/public/receipt', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({token})});
  if (!res.ok) { put($('receipt-body'), h('p', {class: 'error', id: 'receipt-error', text: t('receipt.not_found')})); return; }
  render(await res.json());
}

async function send(fixed) {
  const form = $('confirm');
  const out = $('confirm-result');
  const rating = form.querySelector('input[name=satisfaction]:checked');
  if (fixed && !rating) { out.className = 'error'; out.textContent = t('receipt.rating_required'); return; }
  const res = await fetch('/api/public/receipt/confirm', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({token, fixed, satisfaction: fixed ? Number(rating.value) : null, comment: form.comment.value.trim()}),
  });
  if (!res.ok) {
    const j = await res.json().catch(() => ({}));
    out.className = 'error';
    put(out, t('common.failed'), ': ', raw(j.message || j.detail || res.statusText));
    return;
  }
  out.className = 'ok';
  out.textContent = fixed ? t('receipt.confirmed') : t('receipt.sent_back');
  render(await res.json());
}

async function main() {
  await loadCatalogue();
  wireLanguageSwitch();
  starInputs($('stars'));
  $('confirm').addEventListener('submit', (e) => { e.preventDefault(); send(true); });
  $('confirm-not-fixed').addEventListener('click', () => send(false));
  await load();
  document.body.dataset.ready = 'true';
}

main();
