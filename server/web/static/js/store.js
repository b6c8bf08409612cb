// What the staff pages share: the viewer, the site's names, and the live state of devices,
// open alerts and work orders, kept current by the event stream.
import {api} from './api.js';
import {label, lang, localized, number, siteLang, t} from './i18n.js';
import {raw} from './dom.js';

export const store = {
  me: null,
  site: null,
  config: new Map(), // device id -> the site file's entry (names, class, metrics)
  buildings: new Map(),
  devices: new Map(), // device id -> GET /api/devices row, updated by the stream
  alerts: new Map(), // open alerts (active, acknowledged)
  orders: new Map(),
};
const listeners = new Set();

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function changed(kind, id) {
  for (const fn of [...listeners]) {
    try { fn(kind, id); } catch (e) { console.error(e); }
  }
}

export async function loadSite() {
  store.site = await api('/api/ui/site');
  store.config = new Map(store.site.devices.map((d) => [d.id, d]));
  store.buildings = new Map(store.site.buildings.map((b) => [b.id, b]));
}
export async function loadDevices() {
  const rows = await api('/api/devices');
  store.devices = new Map(rows.map((d) => [d.id, d]));
}
export async function loadAlerts() {
  const [active, acked] = await Promise.all([api('/api/alerts?state=active'), api('/api/alerts?state=acknowledged')]);
  store.alerts = new Map([...active, ...acked].map((a) => [a.id, a]));
}
export async function loadOrders() {
  const rows = await api('/api/work-orders?limit=500');
  store.orders = new Map(rows.map((w) => [w.id, w]));
}

// -- live events ----------------------------------------------------------------------------
const refetching = new Set();
export function applyEvent(type, data) {
  if (type === 'reading') {
    const d = store.devices.get(data.device_id);
    if (!d) return;
    for (const [k, v] of Object.entries(data.values || {})) {
      const old = d.values[k] || {};
      d.values[k] = {
        value: v.v ?? v.value,
        unit: v.u ?? v.unit ?? old.unit,
        at: v.t ? new Date(v.t).toISOString() : v.at,
        category: old.category || categoryOf(data.device_id, k),
      };
    }
    d.online = data.online;
    d.last_seen = data.last_seen;
    d.status = data.online ? 'online' : data.last_seen ? 'offline' : 'no_data_yet';
    changed('device', data.device_id);
  } else if (type === 'alert') {
    if (data.state === 'resolved') store.alerts.delete(data.id);
    else store.alerts.set(data.id, data);
    changed('alert', data.id);
    changed('device', data.device_id);
  } else if (type === 'work_order') {
    // The stream's copy lacks the moves this viewer may make: read the order once more.
    store.orders.set(data.id, Object.assign(store.orders.get(data.id) || {}, data));
    if (!refetching.has(data.id)) {
      refetching.add(data.id);
      api(`/api/work-orders/${data.id}`)
        .then((w) => { store.orders.set(w.id, w); changed('order', w.id); })
        .catch(() => {})
        .finally(() => refetching.delete(data.id));
    }
    changed('order', data.id);
  }
}

function categoryOf(deviceId, metric) {
  const cfg = store.config.get(deviceId);
  const m = cfg && cfg.metrics.find((x) => x.key === metric);
  return m ? m.category : 'primary';
}

// -- names ------------------------------------------------------------------------------------
export function deviceName(id) {
  const cfg = store.config.get(id);
  return cfg ? localized(cfg) : id;
}
export function deviceLocation(id) {
  const cfg = store.config.get(id);
  return cfg ? localized(cfg, 'location') : '';
}
export function buildingName(id) {
  const b = store.buildings.get(id);
  return b ? localized(b) : id || '';
}
export function ruleName(rule) {
  const names = (store.site && store.site.rule_names) || {};
  if (lang !== siteLang && names[lang] && names[lang][rule]) return names[lang][rule];
  return (names[''] && names[''][rule]) || rule.replaceAll('_', ' ');
}
// A device class's name from its class file, where the file gives one in this language.
function classLabel(prefix, value) {
  if (prefix !== 'class' || !store.site) return null;
  const labels = (store.site.class_labels || {})[value];
  return (labels && labels[lang]) || null;
}
// Enumerated values through the catalogue; an unknown one is shown as the data it is.
export function word(prefix, value) {
  const text = classLabel(prefix, value) ?? label(prefix, value);
  return text === null ? raw(value) : text;
}
export function wordText(prefix, value) {
  return classLabel(prefix, value) ?? label(prefix, value) ?? value;
}

export function openAlertsOf(deviceId) {
  return [...store.alerts.values()].filter((a) => a.device_id === deviceId && a.state !== 'resolved');
}
export function deviceStatus(d) {
  if (openAlertsOf(d.id).length) return 'alarm';
  if (d.status === 'no_data_yet' || (!d.online && !d.last_seen)) return 'no_data_yet';
  return d.online ? 'online' : 'offline';
}

export function valueText(metric, v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'boolean') return label(`value.${metric}`, v) ?? t(`value.${v}`);
  if (typeof v === 'number') return number(v, metric === 'temperature' || Math.abs(v) >= 10 ? 1 : 2);
  return String(v);
}

export function primaryValues(d) {
  return Object.entries(d.values || {}).filter(([, v]) => v.category !== 'diagnostic');
}

export function isColdStorage(cls) {
  return cls === 'chilled_fridge' || cls === 'freezer' || cls === 'sample_fridge';
}
