// The Device page's state (reported, desired, delta), alerts and raw messages.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { value, when } from "../format.js";
import { badge, button, field, formError, pager, showErrors, table } from "../ui.js";

const STATE_REFRESH_MS = 3000;
const MESSAGE_ROWS = 25;

function json(v) {
  return h("pre", { class: "json" }, JSON.stringify(v ?? {}, null, 2));
}

export function stateSection(deviceId, ctx) {
  const path = `/devices/${encodeURIComponent(deviceId)}`;
  const el = h("section", { class: "card" }, h("h2", {}, "State"));
  const body = h("div");
  el.append(body);
  let pending = null;
  let editing = false;

  const draw = (view) => {
    const desired = view.desired || { version: 0, state: {} };
    const delta = view.delta || {};
    const parts = [
      h("h3", {}, "Reported"), json(view.reported?.values),
      h("h3", {}, `Desired (version ${desired.version})`),
    ];
    if (ctx.can.operate) {
      const text = h("textarea", { rows: 5, spellcheck: "false", class: "code" }, JSON.stringify(desired.state || {}, null, 2));
      text.addEventListener("focus", () => { editing = true; });
      const form = h("form", {
        async onsubmit(event) {
          event.preventDefault();
          let state;
          try {
            state = JSON.parse(text.value || "{}");
          } catch {
            showErrors(form, { details: [{ loc: ["state"], msg: "not valid JSON" }] });
            return;
          }
          try {
            editing = false;
            draw(await api.put(`${path}/desired`, { state, version: desired.version }).then(() => api.get(`${path}/state`)));
          } catch (err) {
            if (err.status === 409) err.details = [{ loc: ["state"], msg: "someone changed it meanwhile: reload, then apply your change again" }];
            showErrors(form, err);
          }
        },
      }, field("Desired state (JSON)", text, "state"), formError(),
        h("div", { class: "actions" }, button("Reload", () => { editing = false; refresh(true); }), button("Save desired state", null, { kind: "primary", type: "submit" })));
      parts.push(form);
    } else parts.push(json(desired.state));
    parts.push(h("h3", {}, "Delta (desired, not reported yet)"), Object.keys(delta).length ? json(delta) : h("p", { class: "muted" }, "None: the device reports what is desired."));
    replace(body, parts);
  };
  const refresh = (force = false) => {
    if ((editing && !force) || pending) return;
    pending = setTimeout(() => { pending = null; }, STATE_REFRESH_MS);
    api.get(`${path}/state`).then((view) => ctx.isCurrent() && draw(view)).catch((err) => replace(body, h("p", { class: "notice error" }, err.message)));
  };
  refresh(true);
  return { el, refresh: () => refresh(false) };
}

export function alertsSection(deviceId, ctx) {
  const el = h("section", { class: "card" }, h("h2", {}, "Alerts of this device"));
  const body = h("div");
  el.append(body);
  const refresh = async () => {
    const data = await api.get("/alerts", { device: deviceId, per_page: 20 });
    if (!ctx.isCurrent()) return;
    replace(body, table(
      [
        { title: "Severity", cell: (a) => badge(a.severity, `sev-${a.severity}`) },
        { title: "Rule", cell: (a) => a.rule },
        { title: "Key", cell: (a) => a.key || "–" },
        { title: "State", cell: (a) => a.status },
        { title: "Last value", cell: (a) => value(a.last_value) },
        { title: "Since", cell: (a) => when(a.first_ts || a.created_at) },
      ],
      data.alerts || [],
      { empty: "No alerts for this device." },
    ));
  };
  refresh().catch((err) => replace(body, h("p", { class: "notice error" }, err.message)));
  return { el, refresh: () => refresh().catch(() => {}) };
}

// Raw values grouped by time (a message's values share it), newest first, paged by time.
export function messagesSection(deviceId, ctx) {
  const el = h("section", { class: "card" }, h("h2", {}, "Raw messages"));
  const body = h("div");
  el.append(body);
  const ends = [null];
  let page = 1;
  const load = async () => {
    const data = await api.get(`/devices/${encodeURIComponent(deviceId)}/telemetry`, { limit: MESSAGE_ROWS, order: "desc", end: ends[page - 1] });
    if (!ctx.isCurrent()) return;
    const series = data.telemetry || {};
    // A key that filled its limit may have older values than this page shows: cut at the newest such edge.
    let edge = null;
    for (const points of Object.values(series)) {
      if (points.length >= MESSAGE_ROWS) {
        const oldest = points[points.length - 1].timestamp;
        if (edge === null || oldest > edge) edge = oldest;
      }
    }
    const byTime = new Map();
    for (const [key, points] of Object.entries(series)) {
      for (const p of points) {
        if (edge !== null && p.timestamp < edge) continue;
        if (!byTime.has(p.timestamp)) byTime.set(p.timestamp, {});
        byTime.get(p.timestamp)[key] = p.value;
      }
    }
    const rows = [...byTime.entries()].sort((a, b) => (a[0] < b[0] ? 1 : -1));
    ends[page] = edge;
    replace(body,
      table(
        [
          { title: "Time", cell: ([t]) => when(t) },
          { title: "Values", cell: ([, values]) => h("span", { class: "latest" }, Object.entries(values).map(([k, v]) => h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", value(v)))) },
        ],
        rows,
        { empty: page > 1 ? "No older messages." : "No messages yet." },
      ),
      rows.length || page > 1 ? pager({ page, hasNext: edge !== null, onPage: (p) => { page = p; load(); } }) : null);
  };
  load().catch((err) => replace(body, h("p", { class: "notice error" }, err.message)));
  return el;
}
