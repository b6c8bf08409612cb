// Accounts (admin): list, add, change role, buildings and whether active; and everyone's own
// password. Built on GET/POST /api/users, PATCH /api/users/{username}, POST /api/me/password.
import {api} from '../api.js';
import {t} from '../i18n.js';
import {errorToast, h, put, toast} from '../dom.js';
import {buildingName, store, wordText} from '../store.js';

const ROLES = ['admin', 'maintenance', 'dorm_manager', 'food_safety', 'canteen_manager', 'security', 'counsellor'];
const SCOPED = new Set(['dorm_manager', 'canteen_manager', 'counsellor']);

function roleSelect(value, id) {
  return h('select', {name: 'role', id}, ROLES.map((r) => h('option', {value: r, selected: r === value, text: t(`role.${r}`)})));
}

function buildingChecks(selected, prefix) {
  return h('div', {class: 'chips-row buildings'}, [...store.buildings.values()].map((b) => h('label', {class: 'check'},
    h('input', {type: 'checkbox', name: 'buildings', value: b.id, checked: selected.includes(b.id), id: `${prefix}-${b.id}`}),
    h('span', {raw: true, text: buildingName(b.id)}))));
}

function checked(container) {
  return [...container.querySelectorAll('input[name=buildings]:checked')].map((i) => i.value);
}

export function usersView(root) {
  async function render() {
    let users;
    try {
      users = await api('/api/users');
    } catch (e) {
      put(root, h('h1', {text: t('users.title')}),
        h('p', {class: 'error', id: 'users-error', text: e.status === 404 ? t('users.unavailable') : `${t('common.failed')}: ${e.message}`}));
      return;
    }
    put(root, 
      h('div', {class: 'section-title'}, h('h1', {text: t('users.title')}), h('span', {class: 'badge', raw: true, text: String(users.length)})),
      addForm(),
      h('div', {class: 'list', id: 'users'}, users.map(userItem)));
  }

  function userItem(u) {
    const role = roleSelect(u.role, `role-${u.username}`);
    const buildings = buildingChecks(u.buildings || [], `b-${u.username}`);
    const active = h('input', {type: 'checkbox', name: 'active', checked: u.active !== false});
    const save = h('button', {type: 'button', class: 'primary big', text: t('users.save')});
    save.addEventListener('click', async () => {
      try {
        await api(`/api/users/${encodeURIComponent(u.username)}`, {method: 'PATCH', json: {role: role.value, buildings: SCOPED.has(role.value) ? checked(buildings) : [], active: active.checked}});
        toast(t('users.saved'));
        render();
      } catch (e) { errorToast(e); }
    });
    return h('article', {class: 'item', id: `user-${u.username}`},
      h('div', {class: 'row'}, h('b', {raw: true, text: u.username}), u.display_name ? h('span', {class: 'muted', raw: true, text: u.display_name}) : null,
        h('span', {class: `badge ${u.active === false ? 'st-offline' : 'st-online'}`, text: t(u.active === false ? 'users.disabled' : 'users.active')})),
      h('div', {class: 'filters'}, h('label', {}, t('users.role'), role), h('label', {class: 'check'}, active, t('users.active'))),
      h('div', {}, h('div', {class: 'small muted', text: t('users.buildings')}), buildings),
      h('div', {class: 'actions'}, save));
  }

  function addForm() {
    const role = roleSelect('maintenance', 'new-role');
    const buildings = buildingChecks([], 'new-b');
    const form = h('form', {class: 'stack', id: 'user-add'},
      h('div', {class: 'filters'},
        h('label', {}, t('users.username'), h('input', {name: 'username', required: true, autocapitalize: 'none', maxlength: 64})),
        h('label', {}, t('users.display_name'), h('input', {name: 'display_name', maxlength: 128})),
        h('label', {}, t('users.role'), role)),
      h('div', {}, h('div', {class: 'small muted', text: t('users.buildings')}), buildings),
      h('label', {}, t('users.password'), h('input', {name: 'password', type: 'password', required: true, autocomplete: 'new-password'})),
      h('button', {type: 'submit', class: 'primary big', text: t('users.add')}));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        await api('/api/users', {json: {
          username: f.get('username').trim(), display_name: f.get('display_name').trim() || undefined,
          role: role.value, buildings: SCOPED.has(role.value) ? checked(buildings) : [], password: f.get('password'),
        }});
        toast(t('users.added'));
        render();
      } catch (err) { errorToast(err); }
    });
    return h('section', {class: 'card'}, h('h2', {text: t('users.add_title')}), form);
  }

  render();
  return {};
}

export function passwordView(root) {
  const form = h('form', {class: 'stack', id: 'password-form'},
    h('label', {}, t('password.current'), h('input', {name: 'current', type: 'password', required: true, autocomplete: 'current-password'})),
    h('label', {}, t('password.new'), h('input', {name: 'new', type: 'password', required: true, autocomplete: 'new-password'})),
    h('label', {}, t('password.repeat'), h('input', {name: 'repeat', type: 'password', required: true, autocomplete: 'new-password'})),
    h('button', {type: 'submit', class: 'primary big', text: t('password.submit')}),
    h('p', {class: 'error', id: 'password-error', role: 'alert'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const error = form.querySelector('#password-error');
    if (f.get('new') !== f.get('repeat')) { error.textContent = t('password.mismatch'); return; }
    try {
      await api('/api/me/password', {json: {current_password: f.get('current'), new_password: f.get('new')}, noLogout: true});
      error.textContent = '';
      form.reset();
      // A changed password ends every session, this one too: log in again with the new one.
      toast(t('password.changed'));
      setTimeout(() => window.dispatchEvent(new Event('cfm:logout')), 1500);
    } catch (err) {
      error.textContent = `${t('common.failed')}: ${err.message}`;
    }
  });
  put(root, h('section', {class: 'card narrow'}, h('h1', {text: t('password.title')}), form));
  return {};
}

export {wordText};
