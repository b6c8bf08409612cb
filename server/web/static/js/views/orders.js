// The work-order board: to do, in progress, awaiting verification, done; claim, start,
// resolve with a note and a photo, verify with a rating; an order's page with its history.
import {api} from '../api.js';
import {dateTime, t} from '../i18n.js';
import {h, put, raw, stars, tr} from '../dom.js';
import {orderItem} from '../cards.js';
import {store} from '../store.js';

const LANES = [
  ['todo', ['open', 'reopened']],
  ['doing', ['assigned', 'in_progress']],
  ['check', ['resolved']],
  ['done', ['verified']],
];
const PRIORITY = {P1: 0, P2: 1, P3: 2};

export function ordersView(root) {
  function render() {
    const all = [...store.orders.values()];
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('orders.title')})),
      h('div', {id: 'wos'}, LANES.map(([lane, statuses]) => {
        const list = all.filter((w) => statuses.includes(w.status))
          .sort((a, b) => (PRIORITY[a.priority] - PRIORITY[b.priority]) || new Date(a.due_at) - new Date(b.due_at));
        const shown = lane === 'done' ? list.slice(0, 20) : list;
        return h('section', {class: 'lane', id: `lane-${lane}`},
          h('div', {class: 'section-title'}, h('h2', {text: t(`orders.lane.${lane}`)}), h('span', {class: 'badge', raw: true, text: String(list.length)})),
          h('div', {class: 'list'}, shown.length ? shown.map((w) => orderItem(w, {onDone: render})) : h('p', {class: 'empty', text: t('orders.lane_empty')})));
      })));
  }
  render();
  return {update(kind) { if (kind === 'order' || kind === 'refresh') render(); }};
}

async function photoOf(path) {
  try {
    const blob = await api(path, {blob: true});
    return h('img', {class: 'photo', src: URL.createObjectURL(blob), alt: ''});
  } catch (_) {
    return null;
  }
}

export function orderPage(root, id) {
  let current = null;
  async function load() {
    try {
      current = await api(`/api/work-orders/${id}`);
    } catch (e) {
      put(root, h('p', {class: 'error', text: t('orders.not_found')}));
      return;
    }
    store.orders.set(current.id, current);
    const w = current;
    const [reported, repaired] = await Promise.all([
      w.source === 'manual' ? photoOf(`/api/work-orders/${w.id}/photo`) : null,
      photoOf(`/api/work-orders/${w.id}/resolution-photo`),
    ]);
    put(root, 
      h('p', {}, h('a', {href: '#/orders', text: t('orders.back')})),
      orderItem(w, {detail: true, onDone: load}),
      h('section', {class: 'card'},
        h('h2', {text: t('orders.details')}),
        h('dl', {class: 'kv'},
          h('dt', {text: t('orders.description')}), h('dd', {raw: true, text: w.description || '–'}),
          h('dt', {text: t('orders.location')}), h('dd', {raw: true, text: w.location || '–'}),
          h('dt', {text: t('orders.source')}), h('dd', {text: t(`wo_source.${w.source}`)}),
          h('dt', {text: t('orders.requester')}), h('dd', {raw: true, text: w.requester || '–'}),
          w.contact ? [h('dt', {text: t('orders.contact')}), h('dd', {raw: true, text: w.contact})] : null,
          h('dt', {text: t('orders.created')}), h('dd', {text: dateTime(w.created_at)}),
          h('dt', {text: t('orders.respond_due')}), h('dd', {text: dateTime(w.respond_due_at)}),
          h('dt', {text: t('orders.due')}), h('dd', {text: dateTime(w.due_at)}),
          w.resolved_at ? [h('dt', {text: t('orders.resolved')}), h('dd', {text: dateTime(w.resolved_at)})] : null,
          w.satisfaction ? [h('dt', {text: t('orders.satisfaction')}), h('dd', {}, stars(w.satisfaction))] : null,
          w.device_id ? [h('dt', {text: t('orders.device')}), h('dd', {}, h('a', {href: `#/device/${encodeURIComponent(w.device_id)}`, raw: true, text: w.device_id}))] : null),
        reported ? [h('h3', {text: t('orders.reported_photo')}), reported] : null,
        repaired ? [h('h3', {text: t('orders.repair_photo')}), repaired] : null),
      h('section', {class: 'card'},
        h('h2', {text: t('orders.history')}),
        h('ol', {class: 'history', id: 'wo-history'}, w.history.map((e) => h('li', {},
          h('div', {}, h('b', {text: t(`wo_status.${e.to_status}`)}), ' · ', dateTime(e.at), ' · ', tr('orders.by', {who: e.actor})),
          e.comment ? h('div', {class: 'small', raw: true, text: e.comment}) : null)))));
  }
  load();
  return {update(kind, changed) { if (kind === 'order' && changed === Number(id)) load(); }};
}

export {raw};
