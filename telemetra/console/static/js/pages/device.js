import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { ago, value, when } from "../format.js";
import { openStream } from "../live.js";
import { badge, button, dot, notice, pageHeader, section } from "../ui.js";
import { chartsSection } from "./device_charts.js";
import { commandsSection } from "./device_commands.js";
import { deleteDevice, editDevice, rotateKey } from "./device_forms.js";
import { alertsSection, messagesSection, stateSection } from "./device_panels.js";

function latestList(latest) {
  const entries = Object.entries(latest);
  if (!entries.length) return h("p", { class: "empty" }, "No values yet: they appear here as soon as the device sends.");
  return h("dl", { class: "latest-values" }, entries.map(([key, point]) => h("div", {},
    h("dt", {}, key),
    h("dd", { "data-key": key }, h("span", { class: "value" }, value(point.value)), h("small", { class: "muted", title: when(point.timestamp) }, ago(point.timestamp))))));
}

export async function render(main, ctx) {
  const id = ctx.params.id;
  const path = `/devices/${encodeURIComponent(id)}`;
  const [{ device }, latestAnswer] = await Promise.all([api.get(path), api.get(`${path}/latest`)]);
  const latest = latestAnswer.latest || {};
  const status = h("div");
  const liveState = h("span", { class: "live-state", "aria-live": "polite" }, "connecting…");
  const online = h("span", {}, dot(device.is_online));
  const latestBox = h("div", {}, latestList(latest));
  const numericKeys = Object.entries(latest).filter(([, p]) => typeof p.value === "number").map(([k]) => k).sort();
  const commands = commandsSection(device.id, ctx, status);
  const alerts = alertsSection(device.id, ctx);
  const state = stateSection(device.id, ctx);
  const adminActions = ctx.can.admin
    ? [
        button("Edit", () => editDevice(device, () => render(main, ctx))),
        button("New key", () => rotateKey(device).catch((e) => notice(status, e.message, "error"))),
        button("Delete", () => deleteDevice(device, () => ctx.go("devices")).catch((e) => notice(status, e.message, "error")), { kind: "danger" }),
      ]
    : [];
  const title = pageHeader(device.name || device.id, ...adminActions);
  title.querySelector("h1").prepend(online, " ");
  replace(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/console/devices" }, "Devices"), " / ", device.id),
    title,
    status,
    h("div", { class: "two" },
      section("Device", h("dl", { class: "meta" },
        h("dt", {}, "Id"), h("dd", {}, h("code", {}, device.id)),
        h("dt", {}, "Type"), h("dd", {}, device.device_type || "–"),
        h("dt", {}, "Status"), h("dd", {}, badge(device.status || "–")),
        h("dt", {}, "Location"), h("dd", {}, device.location || "–"),
        h("dt", {}, "Firmware"), h("dd", {}, device.firmware_version || "–"),
        h("dt", {}, "Registered"), h("dd", {}, when(device.created_at)),
        h("dt", {}, "Last seen"), h("dd", { class: "last-seen" }, when(device.last_seen)),
        device.description ? [h("dt", {}, "Description"), h("dd", {}, device.description)] : null,
        Object.keys(device.attributes || {}).length ? [h("dt", {}, "Metadata"), h("dd", {}, h("pre", { class: "json" }, JSON.stringify(device.attributes, null, 2)))] : null)),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", {}, "Latest values"), liveState), latestBox)),
    chartsSection(device.id, numericKeys, ctx),
    h("div", { class: "two" }, state.el, commands.el),
    alerts.el,
    messagesSection(device.id, ctx),
  );
  openStream([device.id], {
    status(text) {
      liveState.textContent = text === "live" ? "● live" : "reconnecting…";
      liveState.classList.toggle("on", text === "live");
    },
    telemetry(event) {
      for (const [key, v] of Object.entries(event.values || {})) latest[key] = { value: v, timestamp: event.ts };
      replace(latestBox, latestList(latest));
      replace(online, dot(true));
      const seen = main.querySelector(".last-seen");
      if (seen) seen.textContent = when(event.ts);
      state.refresh();
    },
    command: (event) => commands.update(event),
    alert: () => alerts.refresh(),
  });
}
