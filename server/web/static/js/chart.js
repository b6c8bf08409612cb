// Hand-written SVG charts: a time series with its limits and alert periods drawn, and
// horizontal bars against a target. No library: two chart kinds, sized to their box, with
// presentation attributes and classes only (no inline styles, nothing for a CSP to refuse).

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

// Keep at most ~2 points per pixel column: the min and max of each column, in time order.
function decimate(points, x0, x1, columns) {
  if (points.length <= columns * 2) return points;
  const out = [];
  const width = (x1 - x0) / columns;
  let col = -1, lo = null, hi = null;
  const flush = () => {
    if (lo === null) return;
    if (lo[0] <= hi[0]) out.push(lo, hi); else out.push(hi, lo);
  };
  for (const p of points) {
    const c = Math.floor((p[0] - x0) / width);
    if (c !== col) { flush(); col = c; lo = hi = p; continue; }
    if (p[1] < lo[1]) lo = p;
    if (p[1] > hi[1]) hi = p;
  }
  flush();
  return out;
}

/**
 * lineChart({width, height, start, end, points: [[ms, value]], step, thresholds: [{value, cls,
 * label}], bands: [{from, to, cls, label}], xLabel: ms => text, yLabel: v => text, title})
 */
export function lineChart(o) {
  const width = Math.max(280, Math.round(o.width || 600));
  const height = o.height || (width < 500 ? 220 : 280);
  const pad = {l: 46, r: 10, t: 10, b: 26};
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': o.title || ''});
  const x0 = o.start, x1 = Math.max(o.end, o.start + 1);
  const values = o.points.map((p) => p[1]);
  const limits = (o.thresholds || []).map((th) => th.value);
  let y0 = Math.min(...values, ...limits), y1 = Math.max(...values, ...limits);
  if (!Number.isFinite(y0)) { y0 = 0; y1 = 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const span = y1 - y0;
  y0 -= span * 0.08; y1 += span * 0.08;
  const step = niceStep(y1 - y0, height < 240 ? 4 : 6);
  if (o.yTicks) { y0 = Math.min(...o.yTicks) - 0.15; y1 = Math.max(...o.yTicks) + 0.15; }
  else { y0 = Math.floor(y0 / step) * step; y1 = Math.ceil(y1 / step) * step; }
  const X = (t) => pad.l + ((t - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (v - y0) / (y1 - y0)) * (height - pad.t - pad.b);

  const yTicks = o.yTicks || [];
  if (!o.yTicks) for (let v = y0; v <= y1 + step / 2; v += step) yTicks.push(v);
  for (const v of yTicks) {
    svg.append(s('line', {class: 'grid-line', x1: pad.l, x2: width - pad.r, y1: Y(v), y2: Y(v)}));
    svg.append(s('text', {x: pad.l - 4, y: Y(v) + 4, 'text-anchor': 'end'}, o.yLabel ? o.yLabel(v) : String(v)));
  }
  const ticks = width < 500 ? 3 : 6;
  for (let i = 0; i <= ticks; i++) {
    const t = x0 + ((x1 - x0) * i) / ticks;
    svg.append(s('line', {class: 'axis', x1: X(t), x2: X(t), y1: height - pad.b, y2: height - pad.b + 4}));
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svg.append(s('text', {x: X(t), y: height - 8, 'text-anchor': anchor}, o.xLabel ? o.xLabel(t) : ''));
  }
  svg.append(s('line', {class: 'axis', x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b}));

  for (const b of o.bands || []) {
    const a = Math.max(x0, b.from), z = Math.min(x1, b.to);
    if (z <= a) continue;
    const rect = s('rect', {class: `band ${b.cls || ''}`, x: X(a), y: pad.t, width: Math.max(2, X(z) - X(a)), height: height - pad.t - pad.b});
    if (b.label) rect.append(s('title', {}, b.label));
    svg.append(rect);
  }
  for (const th of o.thresholds || []) {
    const line = s('line', {class: `threshold ${th.cls || ''}`, x1: pad.l, x2: width - pad.r, y1: Y(th.value), y2: Y(th.value)});
    if (th.label) line.append(s('title', {}, th.label));
    svg.append(line);
  }
  const pts = decimate(o.points, x0, x1, width - pad.l - pad.r);
  if (pts.length) {
    let d = '';
    pts.forEach((p, i) => {
      const x = X(p[0]).toFixed(1), y = Y(p[1]).toFixed(1);
      if (i === 0) d += `M${x},${y}`;
      else if (o.step) d += `H${x}V${y}`;
      else d += `L${x},${y}`;
    });
    svg.append(s('path', {class: 'series', d}));
    if (pts.length === 1) svg.append(s('circle', {cx: X(pts[0][0]), cy: Y(pts[0][1]), r: 3, class: 'series'}));
  }
  return svg;
}

/**
 * barChart({width, rows: [{label, values: [v...], texts: [text...]}], max, target, series:
 * [cls...], meets: (v, i) => bool}): horizontal bars, one row per group, a target line.
 */
export function barChart(o) {
  const width = Math.max(280, Math.round(o.width || 600));
  const n = Math.max(1, (o.series || ['']).length);
  const barH = 14, gap = 3, rowGap = 10;
  const labelW = Math.min(140, Math.round(width * 0.32));
  const valueW = 52;
  const rowH = n * barH + (n - 1) * gap + rowGap;
  const height = Math.max(40, o.rows.length * rowH + 22);
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': o.title || ''});
  const max = o.max || Math.max(1e-9, ...o.rows.flatMap((r) => r.values.filter((v) => v !== null && v !== undefined)));
  const X = (v) => labelW + (v / max) * (width - labelW - valueW);
  o.rows.forEach((row, i) => {
    const top = 8 + i * rowH;
    svg.append(s('text', {x: labelW - 6, y: top + (n * barH) / 2 + 4, 'text-anchor': 'end'}, row.label));
    row.values.forEach((v, j) => {
      const y = top + j * (barH + gap);
      const cls = `bar ${(o.series || [])[j] || ''} ${o.meets && v !== null && v !== undefined && !o.meets(v, j) ? 'misses' : ''}`;
      if (v !== null && v !== undefined) svg.append(s('rect', {class: cls, x: labelW, y, width: Math.max(1, X(Math.min(v, max)) - labelW), height: barH}));
      svg.append(s('text', {x: (v !== null && v !== undefined ? X(Math.min(v, max)) : labelW) + 4, y: y + barH - 3}, (row.texts || [])[j] ?? ''));
    });
  });
  if (o.target !== undefined && o.target !== null) {
    svg.append(s('line', {class: 'target-line', x1: X(o.target), x2: X(o.target), y1: 2, y2: height - 16}));
  }
  svg.append(s('line', {class: 'axis', x1: labelW, x2: labelW, y1: 2, y2: height - 16}));
  return svg;
}
