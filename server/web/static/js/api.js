// The REST API with the logged-in user's token, and the live event stream.

let token = sessionStorage.getItem('token');

export function loggedIn() {
  return Boolean(token);
}
export function setToken(value) {
  token = value;
  if (value) sessionStorage.setItem('token', value);
  else sessionStorage.removeItem('token');
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

async function errorText(r) {
  try {
    const j = await r.json();
    if (j.message) return j.message;
    if (typeof j.detail === 'string') return j.detail;
    if (Array.isArray(j.detail)) return j.detail.map((d) => `${d.field || (d.loc || []).slice(-1)[0]}: ${d.msg}`).join('; ');
  } catch (_) { /* not JSON */ }
  return r.statusText || String(r.status);
}

// api(path) GETs JSON; api(path, {json}) POSTs it (or `method`); {blob: true} returns a Blob.
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = `Bearer ${token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const method = options.method || (body !== undefined ? 'POST' : 'GET');
  const r = await fetch(path, {method, headers, body});
  if (r.status === 401 && token && !options.noLogout) onUnauthorized();
  if (!r.ok) throw new ApiError(r.status, await errorText(r));
  if (options.blob) return r.blob();
  const type = r.headers.get('content-type') || '';
  return type.includes('json') ? r.json() : r.text();
}

export async function login(username, password) {
  const r = await fetch('/api/auth/token', {method: 'POST', body: new URLSearchParams({username, password})});
  if (!r.ok) throw new ApiError(r.status, await errorText(r));
  setToken((await r.json()).access_token);
}

// The stream's URL: a short-lived ticket where the server issues them (a token never sits in
// a URL then), else the token itself as the query parameter the server accepts for EventSource.
async function streamUrl() {
  try {
    const ticket = await api('/api/stream/ticket', {method: 'POST', noLogout: true});
    if (ticket && ticket.ticket) return `/api/stream?ticket=${encodeURIComponent(ticket.ticket)}`;
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 405)) throw e;
  }
  return `/api/stream?access_token=${encodeURIComponent(token)}`;
}

// Live events: onEvent(type, data) for reading | alert | work_order | gateway; onState(state)
// with connecting | live | lost. Reconnects with a fresh ticket after a loss.
export function openStream(onEvent, onState) {
  let source = null;
  let closed = false;
  let retry = 1000;
  async function connect() {
    if (closed || !token) return;
    onState('connecting');
    let url;
    try {
      url = await streamUrl();
    } catch (_) {
      onState('lost');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
      return;
    }
    source = new EventSource(url);
    source.addEventListener('open', () => { retry = 1000; onState('live'); });
    for (const type of ['reading', 'alert', 'work_order', 'gateway']) {
      source.addEventListener(type, (e) => {
        try { onEvent(type, JSON.parse(e.data)); } catch (err) { console.error(err); }
      });
    }
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        onState('lost');
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      } else {
        onState('connecting');
      }
    });
  }
  connect();
  return () => { closed = true; if (source) source.close(); };
}

// A photo chosen in a file input as a data URL (JPEG or PNG, at most 2 MB: checked again by
// the server, by content).
export const MAX_PHOTO = 2 * 1024 * 1024;
export function readPhoto(file) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(fr.result);
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(file);
  });
}
