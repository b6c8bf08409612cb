// The dorm manager's home: their buildings' doors and rooms, the buildings' open alerts with
// one-tap acknowledge, and the late returns of a night.
import {api} from '../api.js';
import {siteDate, t, timeOfDay} from '../i18n.js';
import {h, put} from '../dom.js';
import {deviceCard, fillDeviceCard} from '../cards.js';
import {alertList} from './alerts.js';
import {buildingName, deviceName, store} from '../store.js';

export function dormView(root) {
  const mine = () => {
    const me = store.me;
    const ids = me.buildings && me.buildings.length ? me.buildings : [...store.buildings.values()].filter((b) => b.kind === 'dorm').map((b) => b.id);
    return ids.filter((id) => store.buildings.has(id));
  };
  let night = siteDate(-1);

  function lateReturns() {
    const box = h('div', {class: 'list', id: 'late-returns'}, h('p', {class: 'muted', text: t('common.loading')}));
    api(`/api/late-returns?night=${night}`).then((r) => {
      put(box, ...(r.entries.length
        ? [h('table', {class: 'rtable'},
          h('thead', {}, h('tr', {}, h('th', {text: t('late.time')}), h('th', {text: t('late.building')}), h('th', {text: t('late.door')}), h('th', {text: t('late.card')}))),
          h('tbody', {}, r.entries.map((e) => h('tr', {},
            h('td', {class: 'first', 'data-label': t('late.time'), text: timeOfDay(e.at)}),
            h('td', {'data-label': t('late.building'), raw: true, text: buildingName(e.building)}),
            h('td', {'data-label': t('late.door'), raw: true, text: deviceName(e.device_id)}),
            h('td', {'data-label': t('late.card'), raw: true, text: e.card || '–'})))))]
        : [h('p', {class: 'empty', text: t('late.none')})]));
    }).catch((e) => put(box, h('p', {class: 'error', text: `${t('common.failed')}: ${e.message}`})));
    return box;
  }

  function render() {
    const buildings = mine();
    const picker = h('input', {type: 'date', id: 'late-night', value: night, max: siteDate(0)});
    let late = lateReturns();
    picker.addEventListener('change', () => { night = picker.value || siteDate(-1); const next = lateReturns(); late.replaceWith(next); late = next; });
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('dorm.title')})),
      // What needs the manager first: the buildings' open alerts, then doors and rooms.
      h('div', {class: 'section-title'}, h('h2', {text: t('dorm.alerts')})),
      alertList((a) => buildings.includes(a.building)),
      ...buildings.map((b) => {
        const devices = [...store.devices.values()].filter((d) => d.building === b);
        const doors = devices.filter((d) => d.device_class === 'dorm_door' || d.device_class === 'contact_sensor');
        const rooms = devices.filter((d) => !doors.includes(d));
        return h('section', {class: 'building', id: `building-${b}`},
          h('h2', {raw: true, text: buildingName(b)}),
          h('div', {class: 'place', text: t('dorm.doors')}),
          h('div', {class: 'grid'}, doors.length ? doors.map((d) => deviceCard(d)) : h('p', {class: 'empty', text: t('dorm.no_devices')})),
          h('div', {class: 'place', text: t('dorm.rooms')}),
          h('div', {class: 'grid'}, rooms.length ? rooms.map((d) => deviceCard(d)) : h('p', {class: 'empty', text: t('dorm.no_devices')})));
      }),
      h('section', {class: 'card'},
        h('h2', {text: t('late.title')}),
        h('label', {}, t('late.night'), picker),
        late));
  }
  render();
  return {
    update(kind, id) {
      if (kind === 'refresh') { render(); return; }
      if (kind === 'device') {
        const d = store.devices.get(id);
        const card = document.getElementById(`dev-${id}`);
        if (d && card) fillDeviceCard(card, d);
      } else if (kind === 'alert') {
        document.getElementById('alerts').replaceWith(alertList((a) => mine().includes(a.building)));
      }
    },
  };
}
