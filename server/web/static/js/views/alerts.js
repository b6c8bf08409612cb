// Open alerts (active and acknowledged), newest and most severe first; one-tap acknowledge.
import {t} from '../i18n.js';
import {h, put} from '../dom.js';
import {alertItem} from '../cards.js';
import {store} from '../store.js';

const SEVERITY = {critical: 0, major: 1, warning: 2, info: 3};

export function sortAlerts(list) {
  return list.sort((a, b) => (a.state === b.state ? 0 : a.state === 'active' ? -1 : 1)
    || (SEVERITY[a.severity] ?? 9) - (SEVERITY[b.severity] ?? 9)
    || new Date(b.raised_at) - new Date(a.raised_at));
}

export function alertList(filter = () => true) {
  const list = sortAlerts([...store.alerts.values()].filter(filter));
  return h('div', {class: 'list', id: 'alerts'},
    list.length ? list.map((a) => alertItem(a, {onDone: () => window.dispatchEvent(new Event('cfm:refresh'))}))
      : h('p', {class: 'empty', text: t('alerts.none')}));
}

export function alertsView(root) {
  function render() {
    const active = [...store.alerts.values()].filter((a) => a.state === 'active').length;
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('alerts.title')}),
        h('span', {class: 'badge sev-critical', id: 'alert-count', text: String(active)})),
      alertList());
  }
  render();
  return {
    update(kind) {
      if (kind === 'alert' || kind === 'refresh') render();
    },
    refresh: render,
  };
}
