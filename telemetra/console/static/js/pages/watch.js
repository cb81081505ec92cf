// Watch: pick devices and see their messages arrive, newest first (seed 004's monitoring, for a person).
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { value, when } from "../format.js";
import { openStream } from "../live.js";
import { button, input, pageHeader, section } from "../ui.js";

const KEPT = 200;
const MAX_WATCHED = 50;

export async function render(main, ctx) {
  const picked = new Set((new URLSearchParams(location.search).get("devices") || "").split(",").filter(Boolean));
  const search = input({ type: "search", placeholder: "find devices by id or name", "aria-label": "find devices" });
  const choices = h("div", { class: "checks" });
  const log = h("ol", { class: "log", "aria-live": "polite" });
  const state = h("span", { class: "live-state" }, "");
  const count = h("span", { class: "muted" });
  let received = 0;

  let asked = 0;
  const drawChoices = async () => {
    const mine = ++asked;
    const data = await api.get("/fleet/devices", { q: search.value.trim(), limit: 50 });
    if (!ctx.isCurrent() || mine !== asked) return; // an answer to an older search arrived late
    const items = data.items;
    replace(choices, items.length ? items.map((d) => {
      const box = h("input", { type: "checkbox", value: d.device_id, checked: picked.has(d.device_id) });
      box.addEventListener("change", () => {
        if (box.checked && picked.size < MAX_WATCHED) picked.add(d.device_id);
        else {
          picked.delete(d.device_id);
          box.checked = false;
        }
        watch();
      });
      return h("label", { class: "check" }, box, " ", d.name && d.name !== d.device_id ? `${d.name} (${d.device_id})` : d.device_id);
    }) : h("p", { class: "empty" }, "No devices match."));
  };
  const watch = () => {
    const ids = [...picked];
    history.replaceState(null, "", ids.length ? `/console/watch?devices=${encodeURIComponent(ids.join(","))}` : "/console/watch");
    if (!ids.length) {
      state.textContent = "";
      replace(log, h("li", { class: "empty" }, "Pick one or more devices: their messages appear here as they arrive."));
      openStream([], {});
      return;
    }
    state.textContent = "connecting…";
    if (!received) replace(log, h("li", { class: "empty waiting" }, `Watching ${ids.length} device${ids.length > 1 ? "s" : ""}; waiting for their next message…`));
    openStream(ids, {
      status(s) {
        state.textContent = s === "live" ? "● live" : "reconnecting…";
        state.classList.toggle("on", s === "live");
      },
      telemetry(event) {
        received += 1;
        count.textContent = `${received} message${received > 1 ? "s" : ""} received`;
        const waiting = log.querySelector(".empty");
        if (waiting) waiting.remove();
        log.prepend(h("li", {},
          h("time", {}, when(event.ts)),
          h("a", { href: `/console/devices/${encodeURIComponent(event.device_id)}` }, event.device_id),
          h("span", { class: "latest" }, Object.entries(event.values || {}).map(([k, v]) => h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", value(v))))));
        while (log.children.length > KEPT) log.lastChild.remove();
      },
    });
  };
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => drawChoices().catch(() => {}), 250);
  });
  replace(main,
    pageHeader("Watch", button("Clear", () => { received = 0; count.textContent = ""; replace(log); watch(); })),
    h("div", { class: "watch" },
      section("Devices", search, choices),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", {}, "Messages"), h("span", {}, count, " ", state)), log)));
  await drawChoices();
  watch();
}
