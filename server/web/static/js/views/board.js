// Equipment boards: every device by building and place (maintenance, admin), and the
// cold-storage board (food safety). Online / alarm / offline at a glance, latest values,
// updated in place by the event stream.
import {t} from '../i18n.js';
import {h, put, raw} from '../dom.js';
import {deviceCard, fillDeviceCard} from '../cards.js';
import {buildingName, deviceLocation, deviceName, deviceStatus, isColdStorage, store} from '../store.js';

function summary(devices) {
  const count = {online: 0, alarm: 0, offline: 0, no_data_yet: 0};
  for (const d of devices) count[deviceStatus(d)] += 1;
  return h('div', {class: 'summary', id: 'board-summary'},
    h('div', {class: 'chip online', dataset: {count: count.online}}, h('b', {raw: true, text: count.online}), t('status.online')),
    h('div', {class: 'chip alarm', dataset: {count: count.alarm}}, h('b', {raw: true, text: count.alarm}), t('status.alarm')),
    h('div', {class: 'chip offline', dataset: {count: count.offline}}, h('b', {raw: true, text: count.offline}), t('status.offline')),
    h('div', {class: 'chip nodata', dataset: {count: count.no_data_yet}}, h('b', {raw: true, text: count.no_data_yet}), t('status.no_data_yet')));
}

function buildingOrder(id) {
  const ids = [...store.buildings.keys()];
  const i = ids.indexOf(id);
  return i < 0 ? ids.length : i;
}

export function boardView(root, {title, filter = () => true, big = false, intro = null, extra = null} = {}) {
  const visible = () => [...store.devices.values()].filter(filter);

  function render() {
    const devices = visible();
    const byBuilding = new Map();
    for (const d of devices) {
      if (!byBuilding.has(d.building)) byBuilding.set(d.building, []);
      byBuilding.get(d.building).push(d);
    }
    const place = (d) => deviceLocation(d.id) || d.location || '';
    const sections = [...byBuilding.entries()]
      .sort((a, b) => buildingOrder(a[0]) - buildingOrder(b[0]))
      .map(([building, list]) => h('section', {class: 'building', id: `building-${building}`},
        h('h2', {raw: true, text: buildingName(building)}),
        h('div', {class: 'grid'}, list
          .sort((a, b) => place(a).localeCompare(place(b)) || deviceName(a.id).localeCompare(deviceName(b.id)))
          .map((d) => deviceCard(d, {big})))));
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: title})),
      intro,
      summary(devices),
      extra ? extra() : null,
      sections.length ? sections : h('p', {class: 'empty', text: t('board.empty')}));
  }

  render();
  return {
    update(kind, id) {
      if (kind === 'refresh') { render(); return; }
      if (kind !== 'device') return;
      const d = store.devices.get(id);
      const card = document.getElementById(`dev-${id}`);
      if (!d || !filter(d) || !card) return;
      fillDeviceCard(card, d, big);
      card.classList.remove('flash');
      void card.offsetWidth; // restart the highlight
      card.classList.add('flash');
      document.getElementById('board-summary').replaceWith(summary(visible()));
    },
  };
}

export function equipmentBoard(root) {
  return boardView(root, {title: t('board.title')});
}

export function coldBoard(root) {
  return boardView(root, {
    title: t('cold.title'),
    filter: (d) => isColdStorage(d.device_class),
    big: true,
    intro: h('p', {class: 'muted', text: t('cold.intro')}),
    extra: () => h('div', {class: 'chips-row', id: 'coldchain-links'},
      h('a', {class: 'button', href: '#/coldchain', text: t('nav.coldchain')})),
  });
}

export {raw};
