// Rules: the list, and an editor for every rule type whose fields show the API's validation errors.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { button, confirm, field, formError, input, notice, pageHeader, section, select, showErrors, table } from "../ui.js";
import { badge } from "../ui.js";

const TYPES = {
  threshold: { label: "threshold (above or below a value)", fields: [["op", "Operator"], ["value", "Value"]] },
  range: { label: "range (outside low–high)", fields: [["low", "Low"], ["high", "High"]] },
  zscore: { label: "z-score (far from the recent mean)", fields: [["k", "k (standard deviations)"], ["window", "Window (values)"], ["window_s", "or window (seconds)"]] },
  rate: { label: "rate (changes too fast)", fields: [["max_per_s", "Most change per second"]] },
  no_data: { label: "no data (silent for a while)", fields: [["seconds", "Seconds without data"]] },
  offline: { label: "offline (device went offline)", fields: [] },
};
const OPS = [">", ">=", "<", "<=", "==", "!="].map((o) => [o, o]);
const SEVERITIES = ["critical", "major", "minor", "warning", "info"].map((s) => [s, s]);

export function describe(condition) {
  if (!condition) return "–";
  switch (condition.type) {
    case "threshold": return `${condition.op} ${condition.value}`;
    case "range": return `outside ${condition.low} … ${condition.high}`;
    case "zscore": return `z-score > ${condition.k}${condition.window ? ` over ${condition.window} values` : ""}${condition.window_s ? ` over ${condition.window_s} s` : ""}`;
    case "rate": return `changes > ${condition.max_per_s}/s`;
    case "no_data": return `no data for ${condition.seconds} s`;
    case "offline": return "offline";
    default: return condition.type;
  }
}

// A number when the text is one; otherwise the text as typed, so that the API names what is wrong.
function numberOrText(text) {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function conditionFields(prefix, types, initial) {
  const kind = select(Object.entries(types).map(([k, t]) => [k, t.label]), initial?.type || Object.keys(types)[0]);
  const slot = h("div", { class: "row" });
  let inputs = {};
  const draw = () => {
    inputs = {};
    const parts = (types[kind.value]?.fields || []).map(([name, label]) => {
      const el = name === "op" ? select(OPS, initial?.op || ">") : input({ value: initial && initial.type === kind.value && initial[name] != null ? String(initial[name]) : "", inputmode: "decimal", autocomplete: "off" });
      inputs[name] = el;
      return field(label, el, `${prefix}.${name}`);
    });
    replace(slot, parts.length ? parts : h("p", { class: "muted" }, "No parameters."));
  };
  kind.addEventListener("change", draw);
  draw();
  return {
    kind,
    slot,
    value() {
      if (kind.value === "") return null;
      const doc = { type: kind.value };
      for (const [name, el] of Object.entries(inputs)) {
        const v = name === "op" ? el.value : numberOrText(el.value);
        if (v !== undefined) doc[name] = v;
      }
      return doc;
    },
  };
}

function editor(rule, channels, onSaved, onCancel) {
  const name = input({ value: rule?.name || "", maxlength: 100 });
  const key = input({ value: rule?.key || "", maxlength: 128, placeholder: "e.g. temperature" });
  const severity = select(SEVERITIES, rule?.severity || "warning");
  const enabled = h("input", { type: "checkbox", checked: rule ? rule.enabled : true });
  const condition = conditionFields("condition", TYPES, rule?.condition);
  const clearTypes = { "": { label: "when the condition no longer holds", fields: [] }, threshold: TYPES.threshold, range: TYPES.range };
  const clear = conditionFields("clear", clearTypes, rule?.clear || { type: "" });
  const deviceIds = input({ value: (rule?.selector?.device_ids || []).join(", "), placeholder: "all devices when empty" });
  const deviceType = input({ value: rule?.selector?.device_type || "", placeholder: "any type when empty" });
  const picked = new Set(rule?.channels || []);
  const channelBoxes = channels.map((c) => {
    const box = h("input", { type: "checkbox", value: c.id, checked: picked.has(c.id) });
    return h("label", { class: "check" }, box, ` ${c.name} (${c.kind})`);
  });
  const form = h("form", {
    class: "rule-editor",
    async onsubmit(event) {
      event.preventDefault();
      const body = {
        name: name.value,
        key: key.value.trim() || null,
        severity: severity.value,
        enabled: enabled.checked,
        condition: condition.value(),
        clear: clear.value(),
        selector: {
          device_ids: deviceIds.value.split(",").map((s) => s.trim()).filter(Boolean),
          device_type: deviceType.value.trim() || null,
        },
        channels: channelBoxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => Number(b.value)),
      };
      try {
        const answer = rule ? await api.put(`/rules/${rule.id}`, body) : await api.post("/rules", body);
        onSaved(answer.rule);
      } catch (err) {
        showErrors(form, err);
      }
    },
  },
  h("div", { class: "row" }, field("Name", name, "name"), field("Key", key, "key", "The value watched (none for no data and offline)"), field("Severity", severity, "severity")),
  h("fieldset", {}, h("legend", {}, "Fires when"), field("Rule type", condition.kind, "condition.type"), condition.slot),
  h("fieldset", {}, h("legend", {}, "Clears"), field("Clear", clear.kind, "clear.type"), clear.slot),
  h("fieldset", {}, h("legend", {}, "Devices"), h("div", { class: "row" }, field("Device ids (comma-separated)", deviceIds, "selector.device_ids"), field("Device type", deviceType, "selector.device_type"))),
  h("fieldset", { class: "field", "data-field": "channels" }, h("legend", {}, "Notify"), channelBoxes.length ? h("div", { class: "checks" }, channelBoxes) : h("p", { class: "muted" }, "No channels yet: add one on the Channels page to be notified."), h("span", { class: "field-error" })),
  h("label", { class: "check" }, enabled, " Enabled"),
  formError(),
  h("div", { class: "actions" }, button("Cancel", onCancel), button(rule ? "Save rule" : "Create rule", null, { kind: "primary", type: "submit" })));
  return form;
}

export async function render(main, ctx) {
  const message = h("div");
  const editSlot = h("div");
  const list = h("div");
  const [{ rules }, { channels }] = await Promise.all([api.get("/rules"), api.get("/channels")]);
  const channelNames = new Map(channels.map((c) => [c.id, c.name]));
  const open = (rule) => {
    replace(editSlot, section(rule ? `Edit rule: ${rule.name}` : "New rule", editor(rule, channels, () => { replace(editSlot); reload(); notice(message, rule ? "Rule saved." : "Rule created.", "ok"); }, () => replace(editSlot))));
    editSlot.querySelector("input").focus();
  };
  const draw = (items) => {
    const columns = [
      { title: "Name", cell: (r) => r.name },
      { title: "Key", cell: (r) => r.key || "–" },
      { title: "Fires when", cell: (r) => describe(r.condition) },
      { title: "Severity", cell: (r) => badge(r.severity, `sev-${r.severity}`) },
      { title: "Devices", cell: (r) => (r.selector.device_ids.length ? r.selector.device_ids.join(", ") : r.selector.device_type ? `type ${r.selector.device_type}` : "all") },
      { title: "Notify", cell: (r) => (r.channels.length ? r.channels.map((id) => channelNames.get(id) || `#${id}`).join(", ") : "–") },
      { title: "Enabled", cell: (r) => (r.enabled ? "yes" : "no") },
    ];
    if (ctx.can.admin) {
      columns.push({ title: "", class: "row-actions", cell: (r) => h("span", { class: "actions" },
        button("Edit", () => open(r), { kind: "small", label: `edit rule ${r.name}` }),
        button("Delete", async () => {
          if (!(await confirm(`Delete rule "${r.name}" and its alerts?`))) return;
          await api.del(`/rules/${r.id}`);
          reload();
        }, { kind: "small danger", label: `delete rule ${r.name}` })) });
    }
    replace(list, table(columns, items, { empty: "No rules yet. A rule watches a key of some devices and raises an alert while its condition holds." }));
  };
  const reload = async () => draw((await api.get("/rules")).rules);
  replace(main, pageHeader("Rules", ctx.can.admin ? button("New rule", () => open(null), { kind: "primary" }) : null), message, editSlot, list);
  draw(rules);
}
