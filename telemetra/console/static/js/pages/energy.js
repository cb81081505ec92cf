// Energy per hour of a device or of the whole tenant: bars and a table for a day or a month, and CSV.
import { api } from "../api.js";
import { barChart } from "../chart.js";
import { h, replace } from "../dom.js";
import { num, viewerZone } from "../format.js";
import { button, field, input, pageHeader, section, select, table } from "../ui.js";

const pad = (n) => String(n).padStart(2, "0");

function isoDay(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function span(period, picked) {
  if (period === "day") {
    const start = new Date(`${picked}T00:00:00`);
    const end = new Date(start);
    end.setDate(end.getDate() + 1);
    return [isoDay(start), isoDay(end)];
  }
  const [y, m] = picked.split("-").map(Number);
  return [`${y}-${pad(m)}-01`, m === 12 ? `${y + 1}-01-01` : `${y}-${pad(m + 1)}-01`];
}

function csvCell(v) {
  const text = String(v);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export async function render(main, ctx) {
  const today = new Date();
  const fleet = await api.get("/fleet/devices", { limit: 100 }).catch(() => ({ items: [] }));
  const device = select([["", "All devices (tenant)"], ...fleet.items.map((d) => [d.device_id, d.name && d.name !== d.device_id ? `${d.name} (${d.device_id})` : d.device_id])], "");
  const period = select([["day", "Day"], ["month", "Month"]], "day");
  const day = input({ type: "date", value: isoDay(today) });
  const month = input({ type: "month", value: `${today.getFullYear()}-${pad(today.getMonth() + 1)}` });
  const key = input({ value: "instant_power", class: "narrow" });
  const monthField = field("Month", month, "month");
  const dayField = field("Day", day, "day");
  monthField.hidden = true;
  const chart = h("div", { class: "chart-box" });
  const rowsSlot = h("div");
  const summary = h("p", { class: "muted" });
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  let rows = [];

  const load = async () => {
    error.hidden = true;
    const [start, end] = span(period.value, period.value === "day" ? day.value : month.value);
    let data;
    try {
      data = await api.get("/reports/energy", { start, end, tz: viewerZone, device: device.value, key: key.value.trim(), format: "days" });
    } catch (err) {
      error.hidden = false;
      error.textContent = err.message;
      replace(chart);
      replace(rowsSlot);
      return;
    }
    if (!ctx.isCurrent()) return;
    // Every hour of the day (every day of the month) gets its slot; the table lists those with a value.
    let slots;
    if (period.value === "day") {
      const hours = data[day.value] || {};
      slots = Array.from({ length: 24 }, (_, i) => `${pad(i)}:00`).map((hh) => ({ label: hh.slice(0, 2), when: `${day.value} ${hh}`, value: hours[hh], known: hh in hours }));
    } else {
      const [y, m] = month.value.split("-").map(Number);
      const days = new Date(y, m, 0).getDate();
      slots = Array.from({ length: days }, (_, i) => `${month.value}-${pad(i + 1)}`).map((d) => ({ label: d.slice(8), when: d, value: data[d] ? Object.values(data[d]).reduce((a, b) => a + b, 0) : 0, known: d in data }));
    }
    rows = slots.filter((r) => r.known);
    const total = rows.reduce((a, r) => a + r.value, 0);
    summary.textContent = rows.length ? `Total ${num(total / 1000)} kWh; times in ${viewerZone}.` : "";
    barChart(chart, rows.length ? slots.map((r) => ({ label: r.label, value: r.value || 0, title: `${r.when}: ${r.known ? `${num(r.value)} Wh` : "no power values"}` })) : [], { unit: "Wh" });
    replace(rowsSlot, table(
      [{ title: period.value === "day" ? "Hour" : "Day", cell: (r) => r.when }, { title: "Energy (Wh)", cell: (r) => num(Math.round(r.value * 1000) / 1000), class: "num" }],
      rows,
      { empty: `No power values (${key.value}) in this ${period.value}: the report integrates a power key in W sent by the devices.` },
    ));
  };
  const download = () => {
    const lines = [["time", "energy_wh"], ...rows.map((r) => [r.when, r.value])].map((cells) => cells.map(csvCell).join(","));
    const blob = new Blob([`${lines.join("\n")}\n`], { type: "text/csv" });
    const link = h("a", { href: URL.createObjectURL(blob), download: `energy-${device.value || "tenant"}-${period.value === "day" ? day.value : month.value}.csv` });
    document.body.append(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  };
  period.addEventListener("change", () => {
    monthField.hidden = period.value !== "month";
    dayField.hidden = period.value !== "day";
    load();
  });
  for (const el of [device, day, month, key]) el.addEventListener("change", load);
  replace(main,
    pageHeader("Energy", button("Download CSV", download)),
    h("form", { class: "filters labelled", onsubmit: (e) => { e.preventDefault(); load(); } },
      field("Device", device, "device"), field("Period", period, "period"), dayField, monthField, field("Power key (W)", key, "key")),
    error,
    section("Energy (Wh)", summary, chart),
    section("Table", rowsSlot));
  await load();
}
