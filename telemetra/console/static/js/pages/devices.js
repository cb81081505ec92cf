import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { ago, value, when } from "../format.js";
import { openStream } from "../live.js";
import { button, dot, input, notice, pageHeader, pager, select, table } from "../ui.js";
import { deleteDevice, editDevice, registerDevice, rotateKey } from "./device_forms.js";

const PER_PAGE = 50;
const LATEST_SHOWN = 4;

function latestText(latest) {
  const entries = Object.entries(latest || {});
  if (!entries.length) return h("span", { class: "muted" }, "no values yet");
  const shown = entries.slice(0, LATEST_SHOWN).map(([k, v]) => h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", value(v)));
  return h("span", { class: "latest" }, shown, entries.length > LATEST_SHOWN ? h("span", { class: "muted" }, ` +${entries.length - LATEST_SHOWN}`) : null);
}

export async function render(main, ctx) {
  const params = new URLSearchParams(location.search);
  const filters = {
    q: input({ type: "search", value: params.get("q") || "", placeholder: "id or name", "aria-label": "search devices" }),
    type: input({ value: params.get("type") || "", placeholder: "type", "aria-label": "type", class: "narrow" }),
    location: input({ value: params.get("location") || "", placeholder: "location", "aria-label": "location", class: "narrow" }),
    status: select([["", "any status"], ["active", "active"], ["inactive", "inactive"], ["maintenance", "maintenance"]], params.get("status"), { "aria-label": "status" }),
    online: select([["", "online or not"], ["true", "online"], ["false", "offline"]], params.get("online"), { "aria-label": "online" }),
  };
  const status = h("div");
  const list = h("div");
  const cursors = [null];
  let page = 1;
  let rows = new Map();

  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    const query = { limit: PER_PAGE, cursor: cursors[page - 1] };
    for (const [name, el] of Object.entries(filters)) query[name] = el.value.trim();
    const search = new URLSearchParams(Object.entries(query).filter(([k, v]) => v && k !== "limit" && k !== "cursor"));
    history.replaceState(null, "", `/console/devices${search.toString() ? `?${search}` : ""}`);
    const data = await api.get("/fleet/devices", query);
    if (!ctx.isCurrent() || mine !== asked) return; // an answer to an older search arrived late
    cursors[page] = data.next_cursor;
    rows = new Map(data.items.map((d) => [d.device_id, d]));
    const columns = [
      { title: "", cell: (d) => dot(d.online), class: "dot-col" },
      { title: "Device", cell: (d) => h("a", { href: `/console/devices/${encodeURIComponent(d.device_id)}`, class: "device-link" }, h("strong", {}, d.name || d.device_id), d.name && d.name !== d.device_id ? h("small", { class: "muted" }, d.device_id) : null) },
      { title: "Type", cell: (d) => d.type || "–" },
      { title: "Status", cell: (d) => d.status || "–" },
      { title: "Location", cell: (d) => d.location || "–" },
      { title: "Last seen", cell: (d) => h("span", { title: when(d.last_seen), "data-seen": d.device_id }, ago(d.last_seen)) },
      { title: "Latest values", cell: (d) => h("span", { "data-latest": d.device_id }, latestText(d.latest)) },
    ];
    if (ctx.can.admin) {
      columns.push({
        title: "Manage",
        class: "row-actions",
        cell: (d) => h("span", { class: "actions" },
          button("Edit", () => editDevice(d, load), { kind: "small", label: `edit ${d.device_id}` }),
          button("New key", () => rotateKey(d).catch((e) => notice(status, e.message, "error")), { kind: "small", label: `rotate the key of ${d.device_id}` }),
          button("Delete", () => deleteDevice(d, load).catch((e) => notice(status, e.message, "error")), { kind: "small danger", label: `delete ${d.device_id}` })),
      });
    }
    const filtered = Object.values(filters).some((el) => el.value.trim());
    const empty = filtered
      ? "No device matches these filters."
      : "No devices yet. Register one, or let a device send with a tenant key: it is registered on first sight.";
    const total = data.total != null ? `${data.total.toLocaleString()} device${data.total === 1 ? "" : "s"}` : "";
    replace(list, h("p", { class: "muted count" }, total), table(columns, data.items, { empty, caption: "devices" }),
      data.items.length || page > 1 ? pager({ page, hasNext: Boolean(data.next_cursor), total: data.total, perPage: PER_PAGE, onPage: (p) => { page = p; load(); } }) : null);
    openStream([...rows.keys()], {
      telemetry(event) {
        const d = rows.get(event.device_id);
        if (!d) return;
        d.latest = { ...(d.latest || {}), ...event.values };
        d.online = true;
        d.last_seen = event.ts;
        const cell = list.querySelector(`[data-latest="${CSS.escape(event.device_id)}"]`);
        if (cell) replace(cell, latestText(d.latest));
        const seen = list.querySelector(`[data-seen="${CSS.escape(event.device_id)}"]`);
        if (seen) seen.textContent = ago(event.ts);
        const row = cell && cell.closest("tr");
        const mark = row && row.querySelector(".dot");
        if (mark) mark.replaceWith(dot(true));
      },
    });
  };
  const reset = () => {
    cursors.length = 1;
    page = 1;
    load().catch((e) => notice(status, e.message, "error"));
  };
  let typing = null;
  for (const el of Object.values(filters)) {
    el.addEventListener(el.tagName === "SELECT" ? "change" : "input", () => {
      clearTimeout(typing);
      typing = setTimeout(reset, 250);
    });
  }
  replace(
    main,
    pageHeader("Devices", ctx.can.admin ? button("Register a device", () => registerDevice(() => reset()), { kind: "primary" }) : null),
    h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); reset(); } }, Object.values(filters)),
    status,
    list,
  );
  await load();
}
