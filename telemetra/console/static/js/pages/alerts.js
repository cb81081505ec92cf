import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { value, when } from "../format.js";
import { openStream } from "../live.js";
import { badge, button, input, notice, pageHeader, pager, select, table } from "../ui.js";

const PER_PAGE = 50;
const SEVERITIES = ["critical", "major", "minor", "warning", "info"];

export async function render(main, ctx) {
  const status = select([["active", "active"], ["acknowledged", "acknowledged"], ["cleared", "past (cleared)"], ["", "all"]], "active", { "aria-label": "state" });
  const severity = select([["", "any severity"], ...SEVERITIES.map((s) => [s, s])], "", { "aria-label": "severity" });
  const device = input({ type: "search", placeholder: "device id", "aria-label": "device id", class: "narrow" });
  const message = h("div");
  const list = h("div");
  let page = 1;

  const load = async () => {
    let data;
    try {
      data = await api.get("/alerts", { status: status.value, severity: severity.value, device: device.value.trim(), page, per_page: PER_PAGE });
    } catch (err) {
      if (err.status === 404) {
        replace(list, h("p", { class: "empty" }, "No device has this id."));
        return;
      }
      throw err;
    }
    if (!ctx.isCurrent()) return;
    const columns = [
      { title: "Severity", cell: (a) => badge(a.severity, `sev-${a.severity}`) },
      { title: "Rule", cell: (a) => a.rule },
      { title: "Device", cell: (a) => h("a", { href: `/console/devices/${encodeURIComponent(a.device_id)}` }, a.device_id) },
      { title: "Key", cell: (a) => a.key || "–" },
      { title: "Last value", cell: (a) => value(a.last_value), class: "num" },
      { title: "Times", cell: (a) => a.count, class: "num" },
      { title: "Since", cell: (a) => when(a.first_ts || a.created_at) },
      { title: "State", cell: (a) => (a.status === "cleared" ? `cleared ${when(a.cleared_at)}` : a.status) },
    ];
    if (ctx.can.operate) {
      columns.push({
        title: "",
        cell: (a) => (a.status === "active"
          ? button("Acknowledge", async () => {
              try {
                await api.post(`/alerts/${a.id}/ack`);
                await load();
              } catch (err) {
                notice(message, err.message, "error");
              }
            }, { kind: "small", label: `acknowledge ${a.rule} on ${a.device_id}` })
          : ""),
      });
    }
    const empty = status.value === "active" ? "No active alerts. When a rule's condition holds, its alert appears here at once." : "No alerts match.";
    const pagination = data.pagination || {};
    replace(list, table(columns, data.alerts || [], { empty, caption: "alerts" }),
      (data.alerts || []).length || page > 1 ? pager({ page, total: pagination.total, perPage: PER_PAGE, hasNext: page * PER_PAGE < (pagination.total || 0), onPage: (p) => { page = p; load(); } }) : null);
  };
  for (const el of [status, severity]) el.addEventListener("change", () => { page = 1; load(); });
  device.addEventListener("change", () => { page = 1; load(); });
  replace(main,
    pageHeader("Alerts", h("a", { class: "btn", href: "/console/rules" }, "Rules"), h("a", { class: "btn", href: "/console/channels" }, "Channels")),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); page = 1; load(); } }, status, severity, device),
    message, list);
  await load();
  // New alerts arrive live for the tenant's first 200 devices (one stream carries at most 200).
  const devices = await api.get("/fleet/devices", { limit: 200 }).catch(() => ({ items: [] }));
  if (ctx.isCurrent()) openStream(devices.items.map((d) => d.device_id), { alert: () => load().catch(() => {}) });
}
