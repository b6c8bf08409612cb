// The logistics admin's pages: KPIs with charts, devices, maintenance windows, the rules in
// force with a dry run against recorded history.
import {api} from '../api.js';
import {dateTime, month, number, percent, seconds, shortDateTime, t} from '../i18n.js';
import {errorToast, formDialog, h, put, raw, toast, tr} from '../dom.js';
import {barChart} from '../chart.js';
import {statusBadge} from '../cards.js';
import {maintenanceButton} from './device.js';
import {
  buildingName, deviceName, deviceStatus, loadDevices, ruleName, store, valueText, word, wordText,
} from '../store.js';

// -- KPIs --------------------------------------------------------------------------------------
const TARGETS = {on_time_rate: 0.95, pass_rate: 0.8, share_4_or_5: 0.9};
// MTTR is given in hours: under one, minutes read better.
function hours(h) {
  if (h === null || h === undefined) return '–';
  return h < 1 ? t('kpi.minutes', {n: number(h * 60)}) : t('kpi.hours', {n: number(h)});
}

function tile(id, labelText, figure, target, meets) {
  return h('div', {class: `tile ${meets === null ? '' : meets ? 'meets' : 'misses'}`, id},
    h('div', {class: 'label', text: labelText}),
    h('div', {class: 'figure', text: figure}),
    target ? h('div', {class: 'target', text: target}) : null);
}

function groupLabel(by, key) {
  if (by === 'month') return month(key);
  if (by === 'category') return wordText('category', key);
  return key ? buildingName(key) : t('kpi.no_building');
}

export function kpiView(root) {
  let by = 'month';
  let data = null;

  function charts(width) {
    const rows = data.groups;
    const mk = (title, field, {target, fmt, max}) => h('section', {class: 'chart-box', id: `chart-${field}`},
      h('h3', {text: title}),
      rows.length ? barChart({
        width,
        title,
        max,
        target,
        meets: target === undefined ? null : (v) => v >= target,
        rows: rows.map((g) => ({label: groupLabel(by, g.key), values: [g[field]], texts: [g[field] === null ? '–' : fmt(g[field])]})),
      }) : h('p', {class: 'empty', text: t('kpi.no_data')}),
      target !== undefined ? h('div', {class: 'legend'}, h('span', {}, h('span', {class: 'sw target'}), t('kpi.target_line', {target: percent(target)}))) : null);
    return [
      mk(t('kpi.on_time_rate'), 'on_time_rate', {target: TARGETS.on_time_rate, fmt: percent, max: 1}),
      mk(t('kpi.pass_rate'), 'pass_rate', {target: TARGETS.pass_rate, fmt: percent, max: 1}),
      mk(t('kpi.mtta'), 'mtta_minutes', {fmt: (v) => t('kpi.minutes', {n: number(v)})}),
      mk(t('kpi.mttr'), 'mttr_hours', {fmt: hours}),
    ];
  }

  function table() {
    const cols = [
      ['kpi.group', (g) => groupLabel(by, g.key), 'first'],
      ['kpi.orders', (g) => String(g.orders), 'num'],
      ['kpi.on_time_rate', (g) => percent(g.on_time_rate), 'num'],
      ['kpi.pass_rate', (g) => percent(g.pass_rate), 'num'],
      ['kpi.mtta', (g) => (g.mtta_minutes === null ? '–' : t('kpi.minutes', {n: number(g.mtta_minutes)})), 'num'],
      ['kpi.mttr', (g) => hours(g.mttr_hours), 'num'],
      ['kpi.satisfaction', (g) => percent(g.satisfaction.share_4_or_5), 'num'],
      ['kpi.backlog', (g) => String(g.backlog_total), 'num'],
    ];
    return h('div', {class: 'rtable-wrap'}, h('table', {class: 'rtable', id: 'kpi-table'},
      h('thead', {}, h('tr', {}, cols.map(([k, , c]) => h('th', {class: c === 'num' ? 'num' : '', text: t(k)})))),
      h('tbody', {}, data.groups.map((g) => h('tr', {id: `kpi-${by}-${g.key || 'none'}`},
        cols.map(([k, f, c]) => h('td', {class: c, 'data-label': t(k), text: f(g)})))))));
  }

  async function render() {
    put(root, h('h1', {text: t('kpi.title')}), h('p', {class: 'muted', text: t('common.loading')}));
    try {
      data = await api(`/api/ui/kpis?by=${by}`);
    } catch (e) {
      put(root, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`}));
      return;
    }
    const o = data.overall;
    const tabs = h('div', {class: 'tabs', id: 'kpi-by'}, ['month', 'category', 'building'].map((k) => {
      const a = h('a', {href: '#/kpis', class: k === by ? 'active' : '', dataset: {by: k}, text: t(`kpi.by.${k}`)});
      a.addEventListener('click', (e) => { e.preventDefault(); by = k; render(); });
      return a;
    }));
    const box = h('div', {id: 'kpi-charts'});
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('kpi.title')})),
      h('p', {class: 'muted small', text: t('kpi.period', {from: data.from, to: data.to})}),
      h('div', {class: 'tiles', id: 'kpi-tiles'},
        tile('kpi-on-time', t('kpi.on_time_rate'), percent(o.on_time_rate), t('kpi.target', {target: percent(TARGETS.on_time_rate)}), o.on_time_rate === null ? null : o.on_time_rate >= TARGETS.on_time_rate),
        tile('kpi-pass', t('kpi.pass_rate'), percent(o.pass_rate), t('kpi.target', {target: percent(TARGETS.pass_rate)}), o.pass_rate === null ? null : o.pass_rate >= TARGETS.pass_rate),
        tile('kpi-satisfaction', t('kpi.satisfaction'), percent(o.satisfaction.share_4_or_5), t('kpi.target', {target: percent(TARGETS.share_4_or_5)}), o.satisfaction.share_4_or_5 === null ? null : o.satisfaction.share_4_or_5 >= TARGETS.share_4_or_5),
        tile('kpi-mtta', t('kpi.mtta'), o.mtta_minutes === null ? '–' : t('kpi.minutes', {n: number(o.mtta_minutes)}), null, null),
        tile('kpi-mttr', t('kpi.mttr'), hours(o.mttr_hours), null, null),
        tile('kpi-backlog', t('kpi.backlog'), String(o.backlog_total), t('kpi.orders_n', {n: o.orders}), null)),
      tabs,
      box,
      table());
    const width = box.clientWidth || 600;
    put(box, h('div', {class: 'two-col'}, charts(width > 720 ? width / 2 - 8 : width)));
  }
  render();
  return {};
}

// -- devices -----------------------------------------------------------------------------------
export function devicesView(root) {
  function render() {
    const rows = [...store.devices.values()];
    const cols = ['device.name', 'device.class', 'device.building', 'device.status', 'device.seen', 'device.completeness', 'device.maintenance', ''];
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('devices.title')}), h('span', {class: 'badge', raw: true, text: String(rows.length)})),
      h('div', {class: 'rtable-wrap'}, h('table', {class: 'rtable', id: 'devices'},
        h('thead', {}, h('tr', {}, cols.map((k) => h('th', {text: k ? t(k) : ''})))),
        h('tbody', {}, rows.map((d) => h('tr', {id: `row-${d.id}`},
          h('td', {class: 'first'}, h('a', {href: `#/device/${encodeURIComponent(d.id)}`, raw: true, text: deviceName(d.id)}), h('div', {class: 'small muted', raw: true, text: d.id})),
          h('td', {'data-label': t('device.class')}, word('class', d.device_class)),
          h('td', {'data-label': t('device.building'), raw: true, text: buildingName(d.building)}),
          h('td', {'data-label': t('device.status')}, statusBadge(deviceStatus(d))),
          h('td', {'data-label': t('device.seen'), text: d.last_seen ? shortDateTime(d.last_seen) : t('common.never')}),
          h('td', {'data-label': t('device.completeness'), text: d.completeness_pct === null || d.completeness_pct === undefined ? '–' : `${number(d.completeness_pct)}%`}),
          h('td', {'data-label': t('device.maintenance'), text: d.maintenance ? t('maint.until', {when: shortDateTime(d.maintenance.until)}) : '–'}),
          h('td', {'data-label': ''}, maintenanceButton(d.id, d.maintenance, () => loadDevices().then(render)))))))));
  }
  render();
  return {update(kind) { if (kind === 'alert') render(); }};
}

// -- maintenance windows ---------------------------------------------------------------------
export function maintenanceView(root) {
  async function render() {
    let windows;
    try {
      windows = await api('/api/maintenance-windows');
    } catch (e) {
      put(root, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`}));
      return;
    }
    const device = h('select', {name: 'device', id: 'maint-device'}, [...store.config.values()].map((d) => h('option', {value: d.id, raw: true, text: deviceName(d.id)})));
    const hours = h('select', {name: 'hours'}, [1, 2, 4, 8, 24, 72].map((n) => h('option', {value: n, text: t('dur.hours', {n})})));
    const comment = h('input', {name: 'comment', maxlength: 2000});
    const form = h('form', {class: 'stack', id: 'maint-form'},
      h('label', {}, t('maint.device'), device), h('label', {}, t('maint.for'), hours), h('label', {}, t('maint.comment'), comment),
      h('button', {type: 'submit', class: 'primary big', text: t('maint.declare')}));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const until = new Date(Date.now() + Number(hours.value) * 3600e3).toISOString();
      try {
        await api(`/api/devices/${encodeURIComponent(device.value)}/maintenance`, {json: {until, comment: comment.value}});
        toast(t('maint.declared'));
        await loadDevices();
        render();
      } catch (err) { errorToast(err); }
    });
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('maint.title')})),
      h('p', {class: 'muted', text: t('maint.intro')}),
      h('section', {class: 'card'}, h('h2', {text: t('maint.declare_title')}), form),
      h('section', {class: 'card'}, h('h2', {text: t('maint.list')}),
        windows.length ? h('div', {class: 'list', id: 'maint-windows'}, windows.map((w) => h('article', {class: 'item', id: `mw-${w.id}`},
          h('div', {class: 'row'}, h('span', {class: `badge ${w.active ? 'st-maintenance' : ''}`, text: t(w.active ? 'maint.active' : 'maint.past')}),
            h('a', {href: `#/device/${encodeURIComponent(w.device_id)}`, raw: true, text: deviceName(w.device_id)})),
          h('div', {class: 'meta'},
            h('span', {text: `${shortDateTime(w.starts_at)} – ${shortDateTime(w.ended_at || w.ends_at)}`}),
            h('span', {}, tr('maint.by', {who: w.declared_by})),
            w.ended_by ? h('span', {}, tr('maint.ended_by', {who: w.ended_by})) : null),
          w.comment ? h('div', {class: 'small', raw: true, text: w.comment}) : null,
          w.active ? h('div', {class: 'actions'}, maintenanceButton(w.device_id, true, async () => { await loadDevices(); render(); })) : null)))
          : h('p', {class: 'empty', text: t('maint.none')})));
  }
  render();
  return {};
}

// -- rules -------------------------------------------------------------------------------------
function condition(r) {
  const metric = r.metric ? wordText('metric', r.metric) : '';
  const delay = r.for ? t('rules.for', {d: seconds(r.for)}) : '';
  switch (r.kind) {
    case 'threshold':
      return `${metric} ${r.above !== null && r.above !== undefined ? '>' : '<'} ${number(r.above ?? r.below)} ${delay}`.trim();
    case 'state':
      return `${metric} = ${typeof r.equals === 'boolean' ? valueText(r.metric, r.equals) : r.equals} ${delay}`.trim();
    case 'offline':
      return t('rules.offline_after', {d: seconds(r.after)});
    case 'event':
      return t('rules.on_event', {event: wordText('event', r.event)});
    case 'count':
      return t('rules.count', {n: r.count, event: wordText('event', r.event), d: seconds(r.window)});
    case 'rate':
      return t('rules.rate', {metric, n: number(r.rising_per_hour ?? -r.falling_per_hour)});
    case 'night_flow':
      return t('rules.night_flow', {from: r.start_hour, to: r.end_hour});
    default:
      return r.kind;
  }
}

export function rulesView(root) {
  async function render() {
    let sets;
    try {
      sets = await api('/api/rules');
    } catch (e) {
      put(root, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`}));
      return;
    }
    const groups = new Map();
    for (const s of sets) {
      const key = JSON.stringify(s.rules);
      if (!groups.has(key)) groups.set(key, {rules: s.rules, cls: s.device_class, devices: []});
      groups.get(key).devices.push(s.device_id);
    }
    const ruleIds = [...new Set(sets.flatMap((s) => s.rules.map((r) => r.rule)))].sort();
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('rules.title')})),
      h('p', {class: 'muted', text: t('rules.intro')}),
      dryRunForm(ruleIds),
      ...[...groups.values()].map((g, i) => h('section', {class: 'card', id: `rules-${i}`},
        h('h2', {}, word('class', g.cls)),
        h('p', {class: 'small muted', raw: true, text: g.devices.map(deviceName).join(' · ')}),
        h('div', {class: 'rtable-wrap'}, h('table', {class: 'rtable'},
          h('thead', {}, h('tr', {}, ['rules.name', 'rules.condition', 'rules.severity', 'rules.notify', 'rules.work_order'].map((k) => h('th', {text: t(k)})))),
          h('tbody', {}, g.rules.map((r) => h('tr', {},
            h('td', {class: 'first', raw: true, text: ruleName(r.rule)}),
            h('td', {'data-label': t('rules.condition'), text: condition(r)}),
            h('td', {'data-label': t('rules.severity')}, h('span', {class: `badge sev-${r.severity}`, text: t(`severity.${r.severity}`)})),
            h('td', {'data-label': t('rules.notify'), text: (r.notify || []).map((x) => wordText('role', x)).join(t('common.list_sep')) || '–'}),
            h('td', {'data-label': t('rules.work_order'), text: r.work_order ? `${wordText('category', r.work_order.category)} ${r.work_order.priority}` : '–'})))))))));
  }

  function dryRunForm(ruleIds) {
    const device = h('select', {name: 'device', id: 'dry-device'},
      h('option', {value: '', text: t('rules.all_devices')}),
      [...store.config.values()].map((d) => h('option', {value: d.id, raw: true, text: deviceName(d.id)})));
    const period = h('select', {name: 'period', id: 'dry-period'}, [1, 6, 24].map((n) => h('option', {value: n, text: t('rules.last_hours', {n})})));
    const rule = h('select', {name: 'rule', id: 'dry-rule'}, h('option', {value: '', text: t('rules.no_change')}), ruleIds.map((r) => h('option', {value: r, raw: true, text: ruleName(r)})));
    const value = h('input', {name: 'value', id: 'dry-value', placeholder: t('rules.value_hint'), autocapitalize: 'none'});
    const out = h('div', {id: 'dry-result'});
    const form = h('form', {class: 'stack', id: 'dry-run'},
      h('div', {class: 'filters'}, h('label', {}, t('rules.device'), device), h('label', {}, t('rules.period'), period)),
      h('div', {class: 'filters'}, h('label', {}, t('rules.change'), rule), h('label', {}, t('rules.value'), value)),
      h('button', {type: 'submit', class: 'primary big', text: t('rules.run')}), out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const end = new Date(), start = new Date(end.getTime() - Number(period.value) * 3600e3);
      const overrides = [];
      if (rule.value && value.value.trim()) {
        // "above=6, clear_below=5, for=10m": settings as the site file's rule_overrides write them.
        const set = {};
        for (const part of value.value.split(/[,，;]/)) {
          const [k, ...rest] = part.split('=');
          const v = rest.join('=').trim();
          if (!k.trim() || !v) continue;
          set[k.trim()] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === 'true' || v === 'false' ? v === 'true' : v;
        }
        overrides.push(Object.assign({rule: rule.value, set}, device.value ? {device: device.value} : {}));
      }
      put(out, h('p', {class: 'muted', text: t('rules.running')}));
      try {
        const r = await api('/api/rules/dry-run', {json: {start: start.toISOString(), end: end.toISOString(), device_ids: device.value ? [device.value] : [], overrides}});
        const list = (items, id) => h('ul', {id}, items.length ? items.map((a) => h('li', {},
          h('span', {class: `badge sev-${a.severity}`, text: t(`severity.${a.severity}`)}), ' ',
          raw(deviceName(a.device_id)), ' · ', raw(ruleName(a.rule)), ' · ', shortDateTime(a.raised_at))) : h('li', {class: 'muted', text: t('rules.nothing')}));
        put(out, 
          h('p', {id: 'dry-summary', text: t('rules.result', {readings: r.readings, would: r.would_raise.length, raised: r.raised.length})}),
          r.truncated ? h('p', {class: 'error', text: t('rules.truncated')}) : null,
          h('div', {class: 'two-col'},
            h('div', {}, h('h3', {text: t('rules.would_raise')}), list(r.would_raise, 'dry-would')),
            h('div', {}, h('h3', {text: t('rules.raised')}), list(r.raised, 'dry-raised'))),
          h('p', {class: 'small muted', text: t('rules.events_note')}));
      } catch (err) {
        put(out, h('p', {class: 'error', text: `${t('common.failed')}: ${err.message}`}));
      }
    });
    return h('section', {class: 'card'}, h('h2', {text: t('rules.dry_run')}), h('p', {class: 'muted small', text: t('rules.dry_run_intro')}), form);
  }

  render();
  return {};
}

export {dateTime, formDialog};
