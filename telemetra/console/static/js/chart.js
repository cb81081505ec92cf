// Charts written by hand in SVG (no chart library: the console ships no third-party code, and a line with
// its min-max band, bars and two axes are ~250 lines). Drawn at the container's width, redrawn on resize;
// times on the axis in the viewer's zone. The point under the pointer (or under the arrow keys) is described
// in a text box.
import { clear, h, s } from "./dom.js";
import { num } from "./format.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
const PAD = { top: 12, right: 14, bottom: 26, left: 52 };

const hm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const md = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function yTicks(lo, hi) {
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const step = niceStep(hi - lo, 4);
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// Tick times aligned on the viewer's clock: whole hours, local midnights.
function timeTicks(t0, t1, maxTicks) {
  const step = TIME_STEPS.find((st) => (t1 - t0) / st <= maxTicks) || 30 * DAY;
  const ticks = [];
  let t;
  if (step >= HOUR) {
    const d = new Date(t0);
    if (step >= DAY) d.setHours(0, 0, 0, 0);
    else d.setMinutes(0, 0, 0);
    t = d.getTime();
    while (step < DAY && new Date(t).getHours() % (step / HOUR) !== 0) t += HOUR;
  } else {
    t = Math.ceil(t0 / step) * step; // minutes: UTC alignment is the local one in whole-hour zones
  }
  while (t <= t1 && ticks.length < 60) {
    if (t >= t0) ticks.push(t);
    if (step >= DAY) {
      const d = new Date(t);
      d.setDate(d.getDate() + step / DAY);
      t = d.getTime();
    } else t += step;
  }
  return { ticks, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  if (step >= DAY || (d.getHours() === 0 && d.getMinutes() === 0)) return md.format(d);
  return hm.format(d);
}

function frame(container, height) {
  const width = Math.max(260, Math.floor(container.clientWidth || 600));
  const svg = s("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  return { svg, width, inner: { x0: PAD.left, x1: width - PAD.right, y0: PAD.top, y1: height - PAD.bottom } };
}

function yAxis(svg, inner, ticks, y, unit) {
  for (const v of ticks) {
    const py = y(v);
    svg.append(s("line", { class: "grid", x1: inner.x0, x2: inner.x1, y1: py, y2: py }));
    svg.append(s("text", { class: "tick", x: inner.x0 - 6, y: py + 4, "text-anchor": "end" }, num(v) + (unit || "")));
  }
}

function observe(container, draw) {
  draw();
  let last = container.clientWidth;
  const ro = new ResizeObserver(() => {
    if (Math.abs(container.clientWidth - last) > 8) {
      last = container.clientWidth;
      draw();
    }
  });
  ro.observe(container);
}

// buckets: [{t, mean, min, max, count}] oldest first; intervalS: their width.
export function lineChart(container, buckets, { intervalS = 60, label = "", unit = "", height = 220, band = true, empty = "No numeric values in this range.", from, to, zero = false } = {}) {
  const points = buckets
    .map((b) => ({ ...b, ms: new Date(b.t).getTime() }))
    .filter((b) => typeof b.mean === "number" && !Number.isNaN(b.ms));
  observe(container, () => {
    clear(container);
    if (!points.length) {
      container.append(h("p", { class: "empty" }, empty));
      return;
    }
    const { svg, inner } = frame(container, height);
    svg.setAttribute("aria-label", `${label} chart, ${points.length} points`);
    // The range asked for, when given: an hour with two values still reads as an hour.
    const t0 = Math.min(from ?? Infinity, points[0].ms);
    const t1 = Math.max(to ?? -Infinity, points[points.length - 1].ms + intervalS * 1000, t0 + 1);
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of points) {
      lo = Math.min(lo, band && typeof p.min === "number" ? p.min : p.mean);
      hi = Math.max(hi, band && typeof p.max === "number" ? p.max : p.mean);
    }
    if (zero) {
      // Counts: the axis starts at 0, and a quiet day is a flat line at 0, not one in the middle.
      lo = Math.min(lo, 0);
      hi = Math.max(hi, lo + 1);
    }
    const yt = yTicks(lo, hi);
    const ylo = yt[0];
    const yhi = yt[yt.length - 1];
    const x = (t) => inner.x0 + ((t - t0) / (t1 - t0)) * (inner.x1 - inner.x0);
    const y = (v) => inner.y1 - ((v - ylo) / (yhi - ylo || 1)) * (inner.y1 - inner.y0);
    yAxis(svg, inner, yt, y, unit);
    const { ticks, step } = timeTicks(t0, t1, Math.floor((inner.x1 - inner.x0) / 90));
    for (const t of ticks) {
      svg.append(s("text", { class: "tick", x: x(t), y: inner.y1 + 18, "text-anchor": "middle" }, timeLabel(t, step)));
    }
    // A gap of more than two buckets breaks the line: no value there, none drawn.
    const runs = [];
    let run = [];
    for (const p of points) {
      if (run.length && p.ms - run[run.length - 1].ms > 2.5 * intervalS * 1000) {
        runs.push(run);
        run = [];
      }
      run.push(p);
    }
    runs.push(run);
    for (const r of runs) {
      if (band) {
        const top = r.map((p) => `${x(p.ms).toFixed(1)},${y(p.max ?? p.mean).toFixed(1)}`);
        const bottom = r.map((p) => `${x(p.ms).toFixed(1)},${y(p.min ?? p.mean).toFixed(1)}`).reverse();
        svg.append(s("polygon", { class: "band", points: [...top, ...bottom].join(" ") }));
      }
      if (r.length === 1) svg.append(s("circle", { class: "dot", cx: x(r[0].ms), cy: y(r[0].mean), r: 2.5 }));
      else svg.append(s("polyline", { class: "line", points: r.map((p) => `${x(p.ms).toFixed(1)},${y(p.mean).toFixed(1)}`).join(" ") }));
    }
    svg.append(s("line", { class: "axis", x1: inner.x0, x2: inner.x1, y1: inner.y1, y2: inner.y1 }));
    const cursor = s("line", { class: "cursor", x1: 0, x2: 0, y1: inner.y0, y2: inner.y1, visibility: "hidden" });
    svg.append(cursor);
    const readout = h("div", { class: "readout", "aria-live": "polite" }, "Point at the chart (or focus it and use the arrow keys) to read a value.");
    let index = points.length - 1;
    const show = (i) => {
      index = Math.max(0, Math.min(points.length - 1, i));
      const p = points[index];
      const px = x(p.ms);
      cursor.setAttribute("x1", px);
      cursor.setAttribute("x2", px);
      cursor.setAttribute("visibility", "visible");
      const range = band && typeof p.min === "number" ? ` (min ${num(p.min)}, max ${num(p.max)})` : "";
      readout.textContent = `${full.format(new Date(p.ms))}: ${num(p.mean)}${unit}${range}${p.count ? `, ${p.count} values` : ""}`;
    };
    svg.setAttribute("tabindex", "0");
    svg.addEventListener("pointermove", (event) => {
      const box = svg.getBoundingClientRect();
      const t = t0 + ((event.clientX - box.left - inner.x0) / (inner.x1 - inner.x0)) * (t1 - t0);
      let best = 0;
      for (let i = 1; i < points.length; i++) if (Math.abs(points[i].ms - t) < Math.abs(points[best].ms - t)) best = i;
      show(best);
    });
    svg.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft") show(index - 1);
      else if (event.key === "ArrowRight") show(index + 1);
      else return;
      event.preventDefault();
    });
    container.append(svg, readout);
  });
}

// items: [{label, value, title}]; one bar each, every n-th label shown so that they never overlap.
export function barChart(container, items, { unit = "", height = 240 } = {}) {
  observe(container, () => {
    clear(container);
    if (!items.length) {
      container.append(h("p", { class: "empty" }, "Nothing to show in this range."));
      return;
    }
    const { svg, inner } = frame(container, height);
    svg.setAttribute("aria-label", `bar chart, ${items.length} bars`);
    const hi = Math.max(0, ...items.map((i) => i.value));
    const yt = yTicks(0, hi || 1);
    const yhi = yt[yt.length - 1];
    const y = (v) => inner.y1 - (v / (yhi || 1)) * (inner.y1 - inner.y0);
    yAxis(svg, inner, yt, y, "");
    const slot = (inner.x1 - inner.x0) / items.length;
    const every = Math.ceil(items.length / Math.max(1, Math.floor((inner.x1 - inner.x0) / 48)));
    items.forEach((item, i) => {
      const bx = inner.x0 + i * slot + slot * 0.15;
      const top = y(item.value);
      const width = Math.min(48, Math.max(1, slot * 0.7));
      const bar = s("rect", { class: item.value > 0 ? "bar" : "bar zero", x: (bx + (slot * 0.7 - width) / 2).toFixed(1), y: top.toFixed(1), width: width.toFixed(1), height: Math.max(0, inner.y1 - top).toFixed(1) });
      bar.append(s("title", {}, item.title || `${item.label}: ${num(item.value)} ${unit}`));
      svg.append(bar);
      if (i % every === 0) {
        svg.append(s("text", { class: "tick", x: (inner.x0 + (i + 0.5) * slot).toFixed(1), y: inner.y1 + 18, "text-anchor": "middle" }, item.label));
      }
    });
    svg.append(s("line", { class: "axis", x1: inner.x0, x2: inner.x1, y1: inner.y1, y2: inner.y1 }));
    container.append(svg);
  });
}
