// The Device page's charts: a range picker (last hour, day, week, month, or custom in the viewer's zone) and
// one chart per numeric key from /series?interval=auto (mean, min and max per bucket).
import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { h, replace } from "../dom.js";
import { viewerZone } from "../format.js";
import { button, input } from "../ui.js";

const RANGES = [["hour", "Last hour", 3600e3], ["day", "Last day", 86400e3], ["week", "Last week", 7 * 86400e3], ["month", "Last month", 30 * 86400e3]];
const MAX_CHARTS = 8;

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function chartsSection(deviceId, keys, ctx) {
  const root = h("section", { class: "card" });
  const charts = h("div", { class: "charts" });
  const from = input({ type: "datetime-local", "aria-label": "from" });
  const to = input({ type: "datetime-local", "aria-label": "to" });
  const error = h("p", { class: "form-error", role: "alert" });
  const custom = h("form", { class: "custom-range", hidden: true, onsubmit: (e) => { e.preventDefault(); draw("custom"); } },
    h("label", {}, "From ", from), h("label", {}, "To ", to), button("Show", null, { kind: "small", type: "submit" }));
  let chosen = "hour";
  const picker = h("div", { class: "segmented", role: "group", "aria-label": "time range" },
    [...RANGES.map(([id, text]) => [id, text]), ["custom", "Custom"]].map(([id, text]) =>
      button(text, () => {
        custom.hidden = id !== "custom";
        if (id === "custom") {
          const now = new Date();
          if (!from.value) from.value = localInputValue(new Date(now - 86400e3));
          if (!to.value) to.value = localInputValue(now);
          mark(id);
          from.focus();
        } else draw(id);
      }, { kind: "small" })));
  const mark = (id) => {
    chosen = id;
    for (const [i, el] of [...picker.children].entries()) el.setAttribute("aria-pressed", String([...RANGES.map((r) => r[0]), "custom"][i] === id));
  };

  async function draw(id) {
    mark(id);
    error.textContent = "";
    let start;
    let end;
    if (id === "custom") {
      start = new Date(from.value);
      end = new Date(to.value);
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) {
        error.textContent = "Pick a start before the end.";
        return;
      }
    } else {
      end = new Date();
      start = new Date(end - RANGES.find((r) => r[0] === id)[2]);
    }
    if (!keys.length) {
      replace(charts, h("p", { class: "empty" }, "No numeric values yet: a chart appears per key once the device sends numbers."));
      return;
    }
    replace(charts, keys.slice(0, MAX_CHARTS).map((key) => h("div", { class: "chart-item", "data-key": key }, h("h3", {}, key), h("div", { class: "chart-box" }, h("p", { class: "muted" }, "Loading…")))));
    await Promise.all(keys.slice(0, MAX_CHARTS).map(async (key) => {
      const box = charts.querySelector(`[data-key="${CSS.escape(key)}"] .chart-box`);
      try {
        const data = await api.get(`/devices/${encodeURIComponent(deviceId)}/series`, { key, start: start.toISOString(), end: end.toISOString(), interval: "auto" });
        if (ctx.isCurrent() && chosen === id) lineChart(box, data.buckets || [], { intervalS: data.interval_s, label: key, from: start.getTime(), to: end.getTime() });
      } catch (err) {
        replace(box, h("p", { class: "notice error" }, err.message));
      }
    }));
  }

  replace(root, h("div", { class: "section-head" }, h("h2", {}, "Charts"), picker), custom, error,
    h("p", { class: "muted small" }, `Times in ${viewerZone}. The line is the mean per bucket, the band its minimum and maximum.`), charts);
  draw("hour");
  return root;
}
