// The staff UI: log in, then each role's home screen; pages are hash routes (#/board,
// #/orders/12, #/device/canteen-fridge-01, ...). Live updates come from /api/stream.
import {api, login, loggedIn, openStream, setToken, whenUnauthorized} from './api.js';
import {lang, loadCatalogue, t, wireLanguageSwitch} from './i18n.js';
import {h, put, raw} from './dom.js';
import {applyEvent, loadAlerts, loadDevices, loadOrders, loadSite, onChange, store} from './store.js';
import {coldBoard, equipmentBoard} from './views/board.js';
import {alertsView} from './views/alerts.js';
import {orderPage, ordersView} from './views/orders.js';
import {dormView} from './views/dorm.js';
import {devicePage} from './views/device.js';
import {devicesView, kpiView, maintenanceView, rulesView} from './views/admin.js';
import {passwordView, usersView} from './views/users.js';
import {coldChainView} from './views/coldchain.js';

const PAGES = {
  board: equipmentBoard,
  cold: coldBoard,
  dorm: dormView,
  alerts: alertsView,
  orders: ordersView,
  kpis: kpiView,
  devices: devicesView,
  maintenance: maintenanceView,
  rules: rulesView,
  users: usersView,
  password: passwordView,
  coldchain: coldChainView,
};
// Each role's menu; the first entry is its home screen.
const MENUS = {
  maintenance: ['board', 'orders', 'alerts'],
  dorm_manager: ['dorm', 'alerts', 'orders'],
  food_safety: ['cold', 'coldchain', 'alerts', 'orders'],
  canteen_manager: ['cold', 'coldchain', 'alerts', 'orders'],
  admin: ['kpis', 'board', 'orders', 'alerts', 'devices', 'maintenance', 'rules', 'users', 'coldchain'],
  security: ['board', 'alerts'],
  counsellor: ['dorm'],
};

const $ = (id) => document.getElementById(id);
let view = null;
let closeStream = null;

function menu() {
  // A role the site declares acts as a built-in one: it gets that role's screens.
  return [...(MENUS[store.me.acts_as] || MENUS[store.me.role] || ['board']), 'password'];
}

function roleName() {
  const own = store.me.role_label || {};
  return own[lang] || own.en || t(`role.${store.me.acts_as || store.me.role}`);
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const items = menu();
  let [page, arg] = parts;
  if (!page) page = items[0];
  for (const a of $('nav').querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === page);
  // A fresh container per page: a page still loading from before writes into its own
  // (detached) one, never over this one.
  const root = h('div', {id: 'view', class: 'view'});
  $('view').replaceWith(root);
  window.scrollTo(0, 0);
  if (page === 'device' && arg) view = devicePage(root, arg);
  else if (page === 'orders' && arg) view = orderPage(root, arg);
  else if (PAGES[page] && (items.includes(page) || page === 'orders' || page === 'alerts')) view = PAGES[page](root, arg);
  else view = PAGES[items[0]](root);
  document.body.dataset.page = page;
}

function showLive(state) {
  const el = $('live');
  el.dataset.state = state;
  el.textContent = t(`live.${state}`);
}

async function start() {
  store.me = await api('/api/me');
  await loadSite();
  await Promise.all([loadDevices(), loadAlerts(), loadOrders()]);
  const who = $('who');
  put(who, raw(store.me.username), ' · ', raw(roleName()));
  $('logout').hidden = false;
  $('login-box').hidden = true;
  $('dash').hidden = false;
  put($('nav'), ...menu().map((p) => h('a', {href: `#/${p}`, dataset: {page: p}, id: `nav-${p}`, text: t(`nav.${p}`)})));
  onChange((kind, id) => { if (view && view.update) view.update(kind, id); });
  closeStream = openStream(applyEvent, showLive);
  window.addEventListener('hashchange', route);
  window.addEventListener('cfm:refresh', () => { if (view && view.refresh) view.refresh(); });
  // A slow refresh besides the stream: what changed while the connection was down.
  setInterval(async () => {
    await Promise.all([loadDevices(), loadAlerts(), loadOrders()]).catch(() => {});
    if (view && view.update) view.update('refresh');
  }, 60000);
  route();
}

async function logout() {
  if (closeStream) closeStream();
  await api('/api/auth/logout', {method: 'POST', noLogout: true}).catch(() => {});
  setToken(null);
  location.hash = '';
  location.reload();
}

async function main() {
  await loadCatalogue();
  wireLanguageSwitch();
  whenUnauthorized(() => { setToken(null); location.reload(); });
  window.addEventListener('cfm:logout', logout);
  $('logout').addEventListener('click', logout);
  $('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await login(f.get('username'), f.get('password'));
    } catch (err) {
      $('login-error').textContent = err.status === 429 ? t('login.throttled') : t('login.wrong');
      return;
    }
    $('login-error').textContent = '';
    start().catch((err) => { $('login-error').textContent = `${t('common.failed')}: ${err.message}`; });
  });
  if (loggedIn()) start().catch(() => {});
  document.body.dataset.ready = 'true';
}

main();
