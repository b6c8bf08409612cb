// Small DOM helpers: elements without innerHTML, dialogs, a toast.
import {t} from './i18n.js';

// h('div', {class: 'x', raw: true, on: {click: fn}}, child, 'text', ...)
// `raw` marks data (ids, units, what people typed) as not a UI string: data-raw.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'raw') el.dataset.raw = '';
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'hidden') el.hidden = true;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Data shown as it is (an id, a unit, a reporter's words): never translated.
export function raw(text, tag = 'span', cls) {
  return h(tag, {class: cls, raw: true, text: text ?? ''});
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let toastTimer = null;
export function toast(message, kind = '') {
  const box = document.getElementById('toast');
  if (!box) return;
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

export function errorToast(err) {
  toast(`${t('common.failed')}: ${err.message}`, 'error');
}

// A modal form: resolves with the FormData when submitted, null when cancelled.
// check(form) may return an error text to keep the dialog open.
export function formDialog({id, title, fields, submit, check}) {
  return new Promise((resolve) => {
    const error = h('p', {class: 'error', role: 'alert'});
    const form = h('form', {class: 'stack', method: 'dialog'},
      h('h2', {text: title}), ...fields, error,
      h('div', {class: 'actions'},
        h('button', {type: 'button', class: 'big', value: 'cancel', 'data-cancel': true, text: t('common.cancel')}),
        h('button', {type: 'submit', class: 'primary big', text: submit})));
    const dlg = h('dialog', {id}, form);
    document.body.append(dlg);
    let result = null;
    form.querySelector('[data-cancel]').addEventListener('click', () => dlg.close());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const problem = check ? check(form) : null;
      if (problem) { error.textContent = problem; return; }
      result = new FormData(form);
      dlg.close();
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    dlg.showModal();
  });
}

// Five big radio buttons 1-5 for a satisfaction rating.
export function starInputs(container, name = 'satisfaction') {
  for (let n = 1; n <= 5; n++) {
    container.append(h('label', {title: t(`rating.${n}`)},
      h('input', {type: 'radio', name, value: String(n)}),
      h('span', {'aria-hidden': 'true', raw: true, text: '★'.repeat(n > 0 ? 1 : 0)}),
      h('span', {raw: true, text: String(n)})));
  }
  return container;
}

export function stars(n) {
  return raw('★'.repeat(n) + '☆'.repeat(5 - n), 'span', 'stars-view');
}

// A catalogue text whose parameters are data (a user name, an id): the words translated,
// the parameters marked as data. tr('wo.assignee', {who: 'maint'}) -> [text, <span data-raw>]
export function tr(key, params) {
  const text = t(key);
  const out = [];
  let rest = text;
  const re = /\{(\w+)\}/;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    if (m.index) out.push(rest.slice(0, m.index));
    out.push(raw(params[m[1]] ?? ''));
    rest = rest.slice(m.index + m[0].length);
  }
  if (rest) out.push(rest);
  return out;
}

// Replace an element's children (null/false skipped, arrays flattened, text as text).
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
