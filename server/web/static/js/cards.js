// Building blocks the views share: a device card, an alert item with one-tap acknowledge,
// a work-order item with its moves.
import {api} from './api.js';
import {ago, dateTime, shortDateTime, t} from './i18n.js';
import {errorToast, formDialog, h, put, raw, starInputs, toast, tr} from './dom.js';
import {MAX_PHOTO, readPhoto} from './api.js';
import {
  buildingName, deviceLocation, deviceName, deviceStatus, openAlertsOf, primaryValues, ruleName,
  store, valueText, word,
} from './store.js';

export function statusBadge(status) {
  return h('span', {class: `badge st-${status}`, text: t(`status.${status}`)});
}

function valueView(deviceId, key, v, big) {
  const cfg = store.config.get(deviceId);
  const spec = cfg && cfg.metrics.find((m) => m.key === key);
  const unit = v.unit ?? (spec && spec.unit);
  return h('span', {class: 'val'},
    h('span', {class: 'k'}, word('metric', key)),
    h('span', {class: big ? 'v big-temp' : 'v', raw: true, text: valueText(key, v.value)}),
    unit && typeof v.value === 'number' ? raw(` ${unit}`, 'span', 'unit') : null);
}

export function deviceCard(d, {big = false} = {}) {
  const status = deviceStatus(d);
  const card = h('a', {class: 'dev', id: `dev-${d.id}`, href: `#/device/${encodeURIComponent(d.id)}`, dataset: {status}});
  fillDeviceCard(card, d, big);
  return card;
}

export function fillDeviceCard(card, d, big = false) {
  const status = deviceStatus(d);
  card.dataset.status = status;
  const values = primaryValues(d);
  const main = big ? values.filter(([k]) => k === 'temperature') : values;
  const rest = big ? values.filter(([k]) => k !== 'temperature') : [];
  put(card, 
    h('div', {class: 'head'},
      statusBadge(status),
      d.maintenance ? h('span', {class: 'badge st-maintenance', text: t('status.maintenance')}) : null,
      h('span', {class: 'small muted'}, word('class', d.device_class))),
    h('div', {class: 'name', raw: true, text: deviceName(d.id)}),
    h('div', {class: 'id'}, raw(deviceLocation(d.id) || d.location), ' · ', raw(d.id)),
    h('div', {class: 'values'}, main.length || rest.length
      ? [...main.map(([k, v]) => valueView(d.id, k, v, big)), ...rest.map(([k, v]) => valueView(d.id, k, v, false))]
      : h('span', {class: 'muted small', text: t('device.no_values')})),
    h('div', {class: 'alerts'}, openAlertsOf(d.id).map((a) =>
      h('span', {class: `badge sev-${a.severity}`, raw: true, text: ruleName(a.rule)}))),
    h('div', {class: 'seen', text: t('device.last_seen', {when: ago(d.last_seen)})}),
  );
}

// -- alerts ------------------------------------------------------------------------------------
export function alertItem(a, {onDone} = {}) {
  const item = h('article', {class: `item alert-${a.severity}`, id: `alert-${a.id}`, dataset: {state: a.state}});
  const comment = h('input', {name: 'comment', maxlength: 4000, placeholder: t('alert.comment_hint'), 'aria-label': t('alert.comment')});
  const ackButton = h('button', {type: 'button', class: 'primary big ack-button', text: t('alert.ack')});
  ackButton.addEventListener('click', async () => {
    ackButton.disabled = true;
    try {
      const updated = await api(`/api/alerts/${a.id}/ack`, {json: {comment: comment.value.trim()}});
      store.alerts.set(updated.id, updated);
      toast(t('alert.acked'));
      if (onDone) onDone(updated);
    } catch (e) {
      ackButton.disabled = false;
      errorToast(e);
    }
  });
  const facts = [];
  if (a.value !== null && a.value !== undefined) facts.push(h('span', {}, t('alert.value'), ' ', raw(valueText('', a.value))));
  if (a.peak !== null && a.peak !== undefined) facts.push(h('span', {}, t('alert.peak'), ' ', raw(valueText('', a.peak))));
  put(item,
    h('div', {class: 'row'},
      h('span', {class: `badge sev-${a.severity}`, text: t(`severity.${a.severity}`)}),
      h('span', {class: 'badge', text: t(`alert_state.${a.state}`)}),
      a.condition_unknown ? h('span', {class: 'badge st-offline', text: t('alert.condition_unknown')}) : null),
    h('div', {class: 'title', raw: true, text: ruleName(a.rule)}),
    h('div', {class: 'meta'},
      h('a', {href: `#/device/${encodeURIComponent(a.device_id)}`, raw: true, text: deviceName(a.device_id)}),
      a.building ? h('span', {raw: true, text: buildingName(a.building)}) : null,
      h('span', {text: t('alert.raised', {when: dateTime(a.raised_at)})}),
      ...facts),
    a.acknowledged_by ? h('div', {class: 'meta'}, tr('alert.acked_by', {who: a.acknowledged_by, when: shortDateTime(a.acknowledged_at)})) : null,
    a.state === 'active' ? h('div', {class: 'ack'}, comment, ackButton) : null,
  );
  return item;
}

// -- work orders -------------------------------------------------------------------------------
export function orderTitle(w) {
  if (w.source === 'auto' && w.device_id) {
    return [raw(deviceName(w.device_id)), ' · ', word('category', w.category)];
  }
  return [raw(w.requester === 'public' || w.title.startsWith('Reported: ') ? w.description : w.title)];
}

function orderPlace(w) {
  if (w.device_id) return deviceLocation(w.device_id) || w.location;
  return w.location;
}

const ACTIVE = new Set(['open', 'assigned', 'in_progress', 'reopened']);

export function orderItem(w, {onDone, detail = false} = {}) {
  const overdue = ACTIVE.has(w.status) && new Date(w.due_at) < new Date();
  const item = h('article', {class: 'item', id: `wo-${w.id}`, dataset: {status: w.status}});
  put(item,
    h('div', {class: 'row'},
      h('span', {class: `badge pri-${w.priority}`, raw: true, text: w.priority}),
      h('span', {class: `badge wo-${w.status}`, text: t(`wo_status.${w.status}`)}),
      h('span', {class: 'small muted'}, word('category', w.category)),
      h('span', {class: 'small muted', raw: true, text: `#${w.id}`})),
    h(detail ? 'div' : 'a', {class: 'title', href: detail ? undefined : `#/orders/${w.id}`}, orderTitle(w)),
    h('div', {class: 'meta'},
      h('span', {raw: true, text: orderPlace(w)}),
      w.building ? h('span', {raw: true, text: buildingName(w.building)}) : null,
      h('span', {class: overdue ? 'overdue' : '', text: t('wo.due', {when: shortDateTime(w.due_at)})}),
      w.assignee ? h('span', {}, tr('wo.assignee', {who: w.assignee})) : null,
      w.condition_cleared ? h('span', {class: 'ok', text: t('wo.condition_cleared')}) : null,
      w.satisfaction ? h('span', {text: t('wo.rated', {n: w.satisfaction})}) : null),
    moves(w, onDone),
  );
  return item;
}

function moves(w, onDone) {
  const box = h('div', {class: 'actions'});
  for (const to of w.next || []) {
    const b = h('button', {type: 'button', class: `big move-${to}`, dataset: {to}, text: t(`wo.move.${to}`)});
    if (to === 'resolved' || to === 'in_progress' || to === 'assigned') b.classList.add('primary');
    b.addEventListener('click', () => move(w, to, b, onDone));
    box.append(b);
  }
  return box;
}

async function move(w, to, button, onDone) {
  const body = {to};
  let photo = null;
  if (to === 'assigned') {
    body.assignee = store.me.username;
  } else if (to === 'resolved') {
    const form = await formDialog({
      id: 'resolve-dialog',
      title: t('wo.resolve_title', {id: w.id}),
      submit: t('wo.move.resolved'),
      fields: [
        h('label', {}, t('wo.resolve_note'), h('textarea', {name: 'comment', rows: 3, maxlength: 4000, required: true})),
        h('label', {}, t('wo.resolve_photo'), h('input', {name: 'photo', type: 'file', accept: 'image/jpeg,image/png'})),
      ],
      check: (f) => {
        if (!f.comment.value.trim()) return t('wo.note_required');
        const file = f.photo.files[0];
        if (file && !['image/jpeg', 'image/png'].includes(file.type)) return t('form.photo_type');
        if (file && file.size > MAX_PHOTO) return t('form.photo_size');
        return null;
      },
    });
    if (!form) return;
    body.comment = form.get('comment').trim();
    const file = form.get('photo');
    if (file && file.size) photo = await readPhoto(file);
  } else if (to === 'verified') {
    const stars = h('fieldset', {class: 'stars'}, h('legend', {text: t('wo.rating')}));
    starInputs(stars);
    const form = await formDialog({
      id: 'verify-dialog',
      title: t('wo.verify_title', {id: w.id}),
      submit: t('wo.move.verified'),
      fields: [stars, h('label', {}, t('wo.verify_comment'), h('textarea', {name: 'comment', rows: 2, maxlength: 4000}))],
      check: (f) => (f.querySelector('input[name=satisfaction]:checked') ? null : t('wo.rating_required')),
    });
    if (!form) return;
    body.satisfaction = Number(form.get('satisfaction'));
    body.comment = (form.get('comment') || '').trim();
  } else if (to === 'reopened') {
    const form = await formDialog({
      id: 'reopen-dialog',
      title: t('wo.reopen_title', {id: w.id}),
      submit: t('wo.move.reopened'),
      fields: [h('label', {}, t('wo.reopen_reason'), h('textarea', {name: 'comment', rows: 3, maxlength: 4000, required: true}))],
      check: (f) => (f.comment.value.trim() ? null : t('wo.note_required')),
    });
    if (!form) return;
    body.comment = form.get('comment').trim();
  }
  button.disabled = true;
  try {
    if (photo) await api(`/api/work-orders/${w.id}/resolution-photo`, {json: {photo}});
    const updated = await api(`/api/work-orders/${w.id}/transitions`, {json: body});
    store.orders.set(updated.id, updated);
    toast(t('wo.moved', {id: w.id, status: t(`wo_status.${updated.status}`)}));
    if (onDone) onDone(updated);
  } catch (e) {
    button.disabled = false;
    errorToast(e);
  }
}
