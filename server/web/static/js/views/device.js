// A device's page: status and latest values, a chart of recent readings with its rules'
// limits and its alert periods drawn, its alert and work-order history, maintenance.
import {api} from '../api.js';
import {dateTime, dayLabel, number, shortDateTime, t, timeOfDay} from '../i18n.js';
import {errorToast, formDialog, h, put, raw, toast} from '../dom.js';
import {lineChart} from '../chart.js';
import {deviceCard, fillDeviceCard, orderItem} from '../cards.js';
import {buildingName, deviceLocation, deviceName, loadDevices, ruleName, store, valueText, word, wordText} from '../store.js';
import {has} from '../i18n.js';

const hasWord = (prefix, value) => has(`${prefix}.${value}`);

const RANGES = [['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3]];

function chartMetrics(id) {
  const cfg = store.config.get(id);
  return (cfg ? cfg.metrics : []).filter((m) => m.category === 'primary' && m.type !== 'str');
}

export function maintenanceButton(deviceId, current, onDone) {
  const role = store.me.role;
  if (current) {
    const b = h('button', {type: 'button', class: 'big', id: 'end-maintenance', text: t('maint.end')});
    b.addEventListener('click', async () => {
      try {
        await api(`/api/devices/${encodeURIComponent(deviceId)}/maintenance`, {method: 'DELETE'});
        toast(t('maint.ended'));
        onDone();
      } catch (e) { errorToast(e); }
    });
    return b;
  }
  if (!['admin', 'maintenance', 'dorm_manager', 'canteen_manager'].includes(role)) return null;
  const b = h('button', {type: 'button', class: 'big', id: 'declare-maintenance', text: t('maint.declare')});
  b.addEventListener('click', async () => {
    const form = await formDialog({
      id: 'maintenance-dialog',
      title: t('maint.declare_title'),
      submit: t('maint.declare'),
      fields: [
        h('p', {class: 'muted', raw: true, text: deviceName(deviceId)}),
        h('label', {}, t('maint.for'), h('select', {name: 'hours'},
          [1, 2, 4, 8, 24, 72].map((n) => h('option', {value: n, text: t('dur.hours', {n})})))),
        h('label', {}, t('maint.comment'), h('textarea', {name: 'comment', rows: 2, maxlength: 2000})),
      ],
    });
    if (!form) return;
    const until = new Date(Date.now() + Number(form.get('hours')) * 3600e3).toISOString();
    try {
      await api(`/api/devices/${encodeURIComponent(deviceId)}/maintenance`, {json: {until, comment: form.get('comment')}});
      toast(t('maint.declared'));
      onDone();
    } catch (e) { errorToast(e); }
  });
  return b;
}

export function devicePage(root, id) {
  let range = RANGES[0];
  let metric = null;
  let rules = [];
  let alerts = [];
  let lastChart = 0;
  const chartBox = h('div', {class: 'chart-box', id: 'device-chart'});

  async function drawChart() {
    lastChart = Date.now();
    const metrics = chartMetrics(id);
    if (!metrics.length) { put(chartBox, h('p', {class: 'empty', text: t('device.no_chart')})); return; }
    const m = metrics.find((x) => x.key === metric) || metrics[0];
    metric = m.key;
    const end = Date.now(), start = end - range[1];
    let data;
    try {
      data = await api(`/api/devices/${encodeURIComponent(id)}/readings?metric=${encodeURIComponent(m.key)}&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}&limit=100000`);
    } catch (e) {
      put(chartBox, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`}));
      return;
    }
    const points = data.points.filter((p) => p.value !== null).map((p) => [new Date(p.ts).getTime(), Number(p.value)]);
    // A device with only a little history (a demo just started): the chart starts at its data.
    const first = points.length ? points[0][0] : end;
    const from = first > start + (end - start) * 0.1 ? Math.max(start, first - 60e3) : start;
    const thresholds = rules.filter((r) => r.kind === 'threshold' && r.metric === m.key).map((r) => ({
      value: r.above ?? r.below,
      cls: r.severity,
      label: `${ruleName(r.rule)}: ${r.above !== undefined && r.above !== null ? '>' : '<'} ${number(r.above ?? r.below)}`,
    }));
    const bands = alerts.map((a) => ({
      from: new Date(a.raised_at).getTime(),
      to: a.resolved_at ? new Date(a.resolved_at).getTime() : end,
      cls: a.severity,
      label: `${ruleName(a.rule)} ${shortDateTime(a.raised_at)}`,
    }));
    const width = chartBox.clientWidth || root.clientWidth || 600;
    const svg = lineChart({
      width, start: from, end, points, thresholds, bands, step: m.type === 'bool',
      title: t('device.chart_title'),
      xLabel: (ms) => (end - from > 12 * 3600e3 ? `${dayLabel(new Date(ms).toISOString())} ${timeOfDay(new Date(ms).toISOString())}` : timeOfDay(new Date(ms).toISOString())),
      yTicks: m.type === 'bool' ? [0, 1] : null,
      yLabel: (v) => (m.type === 'bool' ? valueText(m.key, v === 1) : number(v)),
    });
    put(chartBox, 
      svg,
      h('div', {class: 'legend'},
        h('span', {}, h('span', {class: 'sw'}), word('metric', m.key), m.unit ? raw(` (${m.unit})`) : null, ' · ', t('device.points', {n: points.length})),
        thresholds.length ? h('span', {}, h('span', {class: 'sw critical'}), t('device.limits')) : null,
        bands.length ? h('span', {}, h('span', {class: 'sw band'}), t('device.alert_periods')) : null),
      h('ul', {class: 'small muted', id: 'chart-limits'}, thresholds.map((th) => h('li', {raw: true, text: th.label}))));
  }

  async function load() {
    const d = store.devices.get(id);
    if (!d || !store.config.has(id)) {
      // Not in the viewer's scope, or no such device: the API answers 404 alike.
      put(root, h('p', {class: 'error', id: 'device-missing', text: t('device.not_found')}), h('p', {}, h('a', {href: '#/', text: t('common.home')})));
      return;
    }
    let ruleSets;
    try {
      [ruleSets, alerts] = await Promise.all([
        api(`/api/rules?device_id=${encodeURIComponent(id)}`),
        api(`/api/alerts?device_id=${encodeURIComponent(id)}&limit=200`),
      ]);
    } catch (e) {
      put(root, h('p', {class: 'error', id: 'device-missing', text: t('device.not_found')}));
      return;
    }
    rules = ruleSets.length ? ruleSets[0].rules : [];
    const orders = [...store.orders.values()].filter((w) => w.device_id === id).sort((a, b) => b.id - a.id);
    const metrics = chartMetrics(id);
    const metricSelect = h('select', {id: 'chart-metric', 'aria-label': t('device.metric')},
      metrics.map((m) => h('option', {value: m.key, selected: m.key === metric, raw: !hasWord('metric', m.key), text: wordText('metric', m.key)})));
    metricSelect.addEventListener('change', () => { metric = metricSelect.value; drawChart(); });
    const rangeSelect = h('select', {id: 'chart-range', 'aria-label': t('device.range')},
      RANGES.map((r) => h('option', {value: r[0], selected: r === range, text: t(`range.${r[0]}`)})));
    rangeSelect.addEventListener('change', () => { range = RANGES.find((r) => r[0] === rangeSelect.value); drawChart(); });
    const cfg = store.config.get(id);
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {raw: true, text: deviceName(id)})),
      h('div', {class: 'two-col'},
        h('div', {}, deviceCard(d)),
        h('section', {class: 'card'},
          h('dl', {class: 'kv'},
            h('dt', {text: t('device.id')}), h('dd', {raw: true, text: id}),
            h('dt', {text: t('device.class')}), h('dd', {}, word('class', d.device_class)),
            h('dt', {text: t('device.building')}), h('dd', {raw: true, text: buildingName(d.building)}),
            h('dt', {text: t('device.location')}), h('dd', {raw: true, text: deviceLocation(id)}),
            h('dt', {text: t('device.model')}), h('dd', {raw: true, text: `${cfg.profile} (${cfg.transport})`}),
            h('dt', {text: t('device.completeness')}), h('dd', {text: d.completeness_pct === null || d.completeness_pct === undefined ? '–' : `${number(d.completeness_pct)}%`}),
            d.maintenance ? [h('dt', {text: t('device.maintenance')}), h('dd', {text: t('maint.until', {when: dateTime(d.maintenance.until)})})] : null),
          h('div', {class: 'actions'}, maintenanceButton(id, d.maintenance, () => loadDevices().then(load))))),
      h('section', {class: 'card'},
        h('div', {class: 'filters'},
          h('label', {}, t('device.metric'), metricSelect),
          h('label', {}, t('device.range'), rangeSelect)),
        chartBox),
      h('section', {class: 'card'},
        h('h2', {text: t('device.alert_history')}),
        alerts.length ? h('table', {class: 'rtable', id: 'device-alerts'},
          h('thead', {}, h('tr', {}, ['alert.rule', 'alert.severity', 'alert.state', 'alert.raised_at', 'alert.resolved_at'].map((k) => h('th', {text: t(k)})))),
          h('tbody', {}, alerts.map((a) => h('tr', {id: `dev-alert-${a.id}`},
            h('td', {class: 'first', raw: true, 'data-label': t('alert.rule'), text: ruleName(a.rule)}),
            h('td', {'data-label': t('alert.severity')}, h('span', {class: `badge sev-${a.severity}`, text: t(`severity.${a.severity}`)})),
            h('td', {'data-label': t('alert.state'), text: t(`alert_state.${a.state}`)}),
            h('td', {'data-label': t('alert.raised_at'), text: shortDateTime(a.raised_at)}),
            h('td', {'data-label': t('alert.resolved_at'), text: a.resolved_at ? shortDateTime(a.resolved_at) : '–'})))))
          : h('p', {class: 'empty', text: t('alerts.none')})),
      h('section', {class: 'card'},
        h('h2', {text: t('device.order_history')}),
        h('div', {class: 'list', id: 'device-orders'}, orders.length ? orders.map((w) => orderItem(w)) : h('p', {class: 'empty', text: t('orders.none')}))));
    await drawChart();
  }
  load();
  return {
    update(kind, changed) {
      if (kind === 'device' && changed === id) {
        const card = document.getElementById(`dev-${id}`);
        const d = store.devices.get(id);
        if (card && d) fillDeviceCard(card, d);
        if (Date.now() - lastChart > 15000) drawChart();
      }
    },
  };
}
