// The cold-chain record (docs/cold-chain.md): excursions with their corrective actions,
// daily records, sign-off, sample retention (留样, a phone page), the calibration register
// and the signed report. Food-safety officer and admin record; a canteen manager reads.
import {api} from '../api.js';
import {dateTime, number, seconds, shortDateTime, siteDate, t} from '../i18n.js';
import {errorToast, formDialog, h, put, raw, toast, tr} from '../dom.js';
import {buildingName, deviceName, store, wordText} from '../store.js';

const TABS = ['excursions', 'daily', 'signoff', 'samples', 'calibration', 'report'];

function temp(v) {
  return v === null || v === undefined ? '–' : `${number(v)} °C`;
}
function limits(min, max) {
  if (min !== null && min !== undefined && max !== null && max !== undefined) return `${number(min)}–${number(max)} °C`;
  if (max !== null && max !== undefined) return `≤ ${number(max)} °C`;
  return `≥ ${number(min)} °C`;
}
function failed(box, e) {
  put(box, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`}));
}
function canRecord() {
  return ['food_safety', 'admin'].includes(store.me.role);
}
function field(labelKey, input) {
  return h('label', {}, t(labelKey), input);
}
function cells(row, cols) {
  return cols.map(([k, value, cls]) => h('td', {class: cls || '', 'data-label': t(k)}, value));
}
function table(id, cols, rows) {
  return h('div', {class: 'rtable-wrap'}, h('table', {class: 'rtable', id},
    h('thead', {}, h('tr', {}, cols.map((k) => h('th', {text: t(k)})))),
    h('tbody', {}, rows)));
}

// -- excursions and corrective actions ------------------------------------------------------
async function excursions(box, config) {
  let status = 'all';
  async function render() {
    let list;
    try {
      list = await api(`/api/cold-chain/excursions?status=${status}&from=${siteDate(-30)}&to=${siteDate(0)}`);
    } catch (e) { failed(box, e); return; }
    const filter = h('div', {class: 'tabs'}, ['all', 'open', 'actioned'].map((s) => {
      const a = h('a', {href: '#/coldchain', class: s === status ? 'active' : '', text: t(`cc.exc_status.${s}`)});
      a.addEventListener('click', (e) => { e.preventDefault(); status = s; render(); });
      return a;
    }));
    put(box, filter, list.length ? h('div', {class: 'list', id: 'excursions'}, list.map((x) => h('article', {class: `item ${x.status === 'open' ? 'alert-critical' : ''}`, id: `exc-${x.id}`, dataset: {status: x.status}},
      h('div', {class: 'row'},
        h('span', {class: `badge ${x.status === 'open' ? 'st-alarm' : 'st-online'}`, text: t(`cc.exc_status.${x.status}`)}),
        x.overdue ? h('span', {class: 'badge sev-critical', text: t('cc.overdue')}) : null,
        h('span', {class: 'badge', text: t(`cc.kind.${x.kind}`)})),
      h('div', {class: 'title'}, raw(deviceName(x.device_id))),
      h('div', {class: 'meta'},
        h('span', {text: t('cc.started', {when: dateTime(x.started_at)})}),
        h('span', {text: x.ended_at ? t('cc.duration', {d: seconds(x.duration_s)}) : t('cc.ongoing')}),
        h('span', {text: t('cc.peak', {v: temp(x.peak)})}),
        h('span', {text: t('cc.limits', {v: limits(x.limit_min, x.limit_max)})}),
        x.unknown_s ? h('span', {text: t('cc.unknown', {d: seconds(x.unknown_s)})}) : null,
        x.samples_at_risk ? h('span', {class: 'overdue', text: t('cc.samples_at_risk', {n: x.samples_at_risk})}) : null),
      x.actions.length ? h('ul', {class: 'history'}, x.actions.map((a) => h('li', {},
        h('div', {}, h('b', {text: t(`cc.disposition.${a.disposition}`)}), a.quantity ? raw(` ${a.quantity}`) : null, a.moved_to ? [' → ', raw(deviceName(a.moved_to))] : null),
        h('div', {class: 'small'}, tr('cc.cause_is', {v: a.cause})),
        a.preventive_action ? h('div', {class: 'small'}, tr('cc.preventive_is', {v: a.preventive_action})) : null,
        h('div', {class: 'small muted'}, raw(a.recorded_by), ' · ', shortDateTime(a.recorded_at))))) : null,
      canRecord() ? h('div', {class: 'actions'}, actionButton(x, config, render)) : null)))
      : h('p', {class: 'empty', text: t('cc.no_excursions')}));
  }
  await render();
}

function actionButton(x, config, done) {
  const b = h('button', {type: 'button', class: 'primary big action-button', text: t('cc.record_action')});
  b.addEventListener('click', async () => {
    const disposition = h('select', {name: 'disposition'}, config.dispositions.map((d) => h('option', {value: d, text: t(`cc.disposition.${d}`)})));
    const form = await formDialog({
      id: 'action-dialog',
      title: t('cc.action_title', {device: deviceName(x.device_id)}),
      submit: t('cc.save'),
      fields: [
        field('cc.cause', h('textarea', {name: 'cause', rows: 2, required: true, maxlength: 2000})),
        field('cc.impact', h('textarea', {name: 'impact', rows: 2, maxlength: 2000})),
        field('cc.disposition', disposition),
        field('cc.moved_to', h('select', {name: 'moved_to'}, h('option', {value: '', text: '–'}),
          config.devices.filter((d) => d.id !== x.device_id).map((d) => h('option', {value: d.id, raw: true, text: deviceName(d.id)})))),
        field('cc.quantity', h('input', {name: 'quantity', maxlength: 100, placeholder: t('cc.quantity_hint')})),
        field('cc.preventive', h('textarea', {name: 'preventive_action', rows: 2, maxlength: 2000})),
      ],
      check: (f) => {
        if (!f.cause.value.trim()) return t('cc.cause_required');
        if (f.disposition.value === 'moved' && !f.moved_to.value) return t('cc.moved_to_required');
        if (f.disposition.value !== 'kept' && !f.quantity.value.trim()) return t('cc.quantity_required');
        return null;
      },
    });
    if (!form) return;
    const body = {};
    for (const [k, v] of form.entries()) if (v) body[k] = String(v).trim();
    try {
      await api(`/api/cold-chain/excursions/${x.id}/actions`, {json: body});
      toast(t('cc.saved'));
      done();
    } catch (e) { errorToast(e); }
  });
  return b;
}

// -- daily records ---------------------------------------------------------------------------
async function daily(box) {
  let day = siteDate(-1);
  const picker = h('input', {type: 'date', id: 'cc-day', value: day, max: siteDate(0)});
  const out = h('div', {id: 'cc-daily'});
  picker.addEventListener('change', () => { day = picker.value || day; load(); });
  put(box, field('cc.day', picker), out);
  async function load() {
    let rows;
    try { rows = await api(`/api/cold-chain/daily?date=${day}`); } catch (e) { failed(out, e); return; }
    put(out, rows.length ? table('cc-daily-table', ['cc.device', 'cc.range', 'cc.minmax', 'cc.mean', 'cc.in_range', 'cc.out_of_range', 'cc.unknown_time', 'cc.completeness', 'cc.excursions', 'cc.record_status'],
      rows.map((r) => h('tr', {id: `daily-${r.device_id}`}, cells(r, [
        ['cc.device', raw(deviceName(r.device_id)), 'first'],
        ['cc.range', limits(r.limit_min, r.limit_max)],
        ['cc.minmax', `${temp(r.min)} / ${temp(r.max)}`],
        ['cc.mean', temp(r.mean)],
        ['cc.in_range', seconds(r.in_range_s)],
        ['cc.out_of_range', seconds(r.out_of_range_s)],
        ['cc.unknown_time', seconds(r.unknown_s)],
        ['cc.completeness', r.completeness_pct === null ? '–' : `${number(r.completeness_pct)}%`],
        ['cc.excursions', String(r.excursion_ids.length)],
        ['cc.record_status', t(`cc.record.${r.status}`)],
      ])))) : h('p', {class: 'empty', text: t('cc.no_records')}));
  }
  await load();
}

// -- sign-off ----------------------------------------------------------------------------------
async function signoff(box, config) {
  const buildings = [...new Set(config.devices.map((d) => d.building))];
  async function render() {
    let list;
    try { list = await api(`/api/cold-chain/signoffs?from=${siteDate(-60)}&to=${siteDate(0)}`); } catch (e) { failed(box, e); return; }
    const building = h('select', {name: 'building'}, buildings.map((b) => h('option', {value: b, raw: true, text: buildingName(b)})));
    const period = h('select', {name: 'period'}, ['day', 'week'].map((p) => h('option', {value: p, text: t(`cc.period.${p}`)})));
    const date = h('input', {type: 'date', name: 'date', value: siteDate(-1), max: siteDate(0)});
    const comment = h('input', {name: 'comment', maxlength: 2000});
    const form = h('form', {class: 'stack', id: 'signoff-form'},
      h('div', {class: 'filters'}, field('cc.building', building), field('cc.period', period), field('cc.date', date)),
      field('cc.comment', comment),
      h('button', {type: 'submit', class: 'primary big', text: t('cc.sign')}));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api('/api/cold-chain/signoffs', {json: {building: building.value, period: period.value, date: date.value, comment: comment.value}});
        toast(t('cc.signed'));
        render();
      } catch (err) { errorToast(err); }
    });
    put(box, canRecord() ? h('section', {class: 'card'}, h('p', {class: 'muted small', text: t('cc.sign_intro')}), form) : null,
      list.length ? h('div', {class: 'list', id: 'signoffs'}, list.map((s) => h('article', {class: 'item', id: `signoff-${s.id}`},
        h('div', {class: 'row'}, h('span', {class: `badge ${s.intact ? 'st-online' : 'st-alarm'}`, text: t(s.intact ? 'cc.intact' : 'cc.changed')}),
          h('b', {raw: true, text: buildingName(s.building)}), h('span', {text: `${s.start} – ${s.end}`})),
        h('div', {class: 'meta'}, raw(s.signed_by), h('span', {text: dateTime(s.signed_at)}), h('span', {class: 'receipt-link', raw: true, text: s.content_hash.slice(0, 16)})),
        s.comment ? h('div', {class: 'small', raw: true, text: s.comment}) : null)))
        : h('p', {class: 'empty', text: t('cc.no_signoffs')}));
  }
  await render();
}

// -- sample retention (phone page) ------------------------------------------------------------
async function samples(box, config) {
  const day = siteDate(0);
  async function render() {
    let meals;
    try { meals = await api(`/api/cold-chain/meals?date=${day}`); } catch (e) { failed(box, e); return; }
    const fridges = config.devices.filter((d) => d.device_class === 'sample_fridge');
    put(box, h('p', {class: 'muted small', text: t('cc.samples_intro', {g: config.min_weight_g, h: config.retain_h})}),
      meals.length ? meals.map((m) => h('section', {class: 'card', id: `meal-${m.meal}`},
        h('h3', {}, raw(m.name), ' ', h('span', {class: 'small muted', text: t('cc.sample_due', {when: shortDateTime(m.due_at)})})),
        h('div', {class: 'list'}, m.dishes.map((dish) => h('div', {class: 'item', dataset: {status: dish.status}},
          h('div', {class: 'row'}, h('b', {raw: true, text: dish.dish}),
            h('span', {class: `badge ${dish.status === 'ok' ? 'st-online' : dish.status === 'pending' ? '' : 'st-alarm'}`, text: t(`cc.sample_status.${dish.status}`)})),
          dish.samples.map((s) => h('div', {class: 'small muted'}, raw(`${s.weight_g} g`), ' · ', raw(s.person), ' · ', shortDateTime(s.taken_at))),
          canRecord() && dish.status !== 'ok' ? sampleForm(m, dish.dish, fridges, render) : null))))) : h('p', {class: 'empty', text: t('cc.no_meals')}));
  }
  await render();
}

function sampleForm(meal, dish, fridges, done) {
  const weight = h('input', {name: 'weight_g', type: 'number', inputmode: 'decimal', min: 1, step: 1, required: true});
  const person = h('input', {name: 'person', maxlength: 64, required: true, value: store.me.username});
  const fridge = h('select', {name: 'fridge'}, fridges.map((f) => h('option', {value: f.id, raw: true, text: deviceName(f.id)})));
  const form = h('form', {class: 'filters sample-form'}, field('cc.weight', weight), field('cc.person', person), field('cc.fridge', fridge),
    h('button', {type: 'submit', class: 'primary big', text: t('cc.add_sample')}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/cold-chain/samples', {json: {date: meal.date, meal: meal.meal, dish, weight_g: Number(weight.value), person: person.value.trim(), fridge: fridge.value, building: meal.building}});
      toast(t('cc.sample_saved'));
      done();
    } catch (err) { errorToast(err); }
  });
  return form;
}

// -- calibration register --------------------------------------------------------------------
async function calibration(box, config) {
  async function render() {
    let list;
    try { list = await api('/api/cold-chain/calibrations'); } catch (e) { failed(box, e); return; }
    const device = h('select', {name: 'device_id'}, config.devices.map((d) => h('option', {value: d.id, raw: true, text: deviceName(d.id)})));
    const form = h('form', {class: 'stack', id: 'calibration-form'},
      h('div', {class: 'filters'}, field('cc.device', device),
        field('cc.calibrated_on', h('input', {type: 'date', name: 'calibrated_on', value: siteDate(0), required: true})),
        field('cc.next_due', h('input', {type: 'date', name: 'next_due', value: siteDate(365), required: true}))),
      h('div', {class: 'filters'}, field('cc.reference', h('input', {name: 'reference', required: true, maxlength: 200})),
        field('cc.offset', h('input', {name: 'offset_c', type: 'number', step: '0.1', value: '0', required: true})),
        field('cc.result', h('select', {name: 'result'}, ['pass', 'fail'].map((r) => h('option', {value: r, text: t(`cc.result.${r}`)}))))),
      h('button', {type: 'submit', class: 'primary big', text: t('cc.add_calibration')}));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const body = Object.fromEntries(f.entries());
      body.offset_c = Number(body.offset_c);
      try { await api('/api/cold-chain/calibrations', {json: body}); toast(t('cc.saved')); render(); } catch (err) { errorToast(err); }
    });
    const status = new Map(config.devices.map((d) => [d.id, d.calibration]));
    put(box, table('cc-calibration-status', ['cc.device', 'cc.calibration_status', 'cc.next_due'],
      config.devices.map((d) => h('tr', {}, cells(d, [
        ['cc.device', raw(deviceName(d.id)), 'first'],
        ['cc.calibration_status', t(`cc.cal.${(status.get(d.id) || {}).status || 'none'}`)],
        ['cc.next_due', (status.get(d.id) || {}).next_due || '–'],
      ])))),
      canRecord() ? h('section', {class: 'card'}, h('h3', {text: t('cc.add_calibration')}), form) : null,
      list.length ? table('cc-calibrations', ['cc.device', 'cc.calibrated_on', 'cc.reference', 'cc.offset', 'cc.result', 'cc.next_due'],
        list.map((c) => h('tr', {id: `cal-${c.id}`}, cells(c, [
          ['cc.device', raw(deviceName(c.device_id)), 'first'],
          ['cc.calibrated_on', c.calibrated_on],
          ['cc.reference', raw(c.reference)],
          ['cc.offset', `${number(c.offset_c)} °C`],
          ['cc.result', t(`cc.result.${c.result}`)],
          ['cc.next_due', c.next_due],
        ])))) : null);
  }
  await render();
}

// -- the signed report -------------------------------------------------------------------------
function report(box) {
  const from = h('input', {type: 'date', name: 'from', value: siteDate(-7), max: siteDate(0)});
  const to = h('input', {type: 'date', name: 'to', value: siteDate(-1), max: siteDate(0)});
  const out = h('p', {id: 'report-links'});
  const make = (format) => {
    const b = h('button', {type: 'button', class: 'primary big', id: `report-${format}`, text: t(`cc.download.${format}`)});
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const blob = await api(`/api/cold-chain/report?from=${from.value}&to=${to.value}&format=${format}`, {blob: true});
        const a = h('a', {href: URL.createObjectURL(blob), download: `cold-chain-${from.value}-${to.value}.${format}`, class: 'button', id: `report-file-${format}`, text: t('cc.save_file', {format: format.toUpperCase()})});
        put(out, a);
        a.click();
      } catch (e) { errorToast(e); } finally { b.disabled = false; }
    });
    return b;
  };
  put(box, h('p', {class: 'muted', text: t('cc.report_intro')}),
    h('div', {class: 'filters'}, field('cc.from', from), field('cc.to', to)),
    h('div', {class: 'actions'}, make('pdf'), make('csv')), out);
}

export function coldChainView(root, tab) {
  const current = TABS.includes(tab) ? tab : 'excursions';
  const box = h('div', {id: `cc-${current}`}, h('p', {class: 'muted', text: t('common.loading')}));
  put(root,
    h('div', {class: 'section-title'}, h('h1', {text: t('coldchain.title')})),
    h('nav', {class: 'tabs', id: 'cc-tabs'}, TABS.map((k) => h('a', {href: `#/coldchain/${k}`, class: k === current ? 'active' : '', id: `cc-tab-${k}`, text: t(`cc.tab.${k}`)}))),
    box);
  api('/api/cold-chain/config').then((config) => {
    const show = {excursions, daily, signoff, samples, calibration, report}[current];
    return show(box, config);
  }).catch((e) => failed(box, e)).finally(() => { box.dataset.loaded = 'true'; });
  return {};
}

export {wordText};
