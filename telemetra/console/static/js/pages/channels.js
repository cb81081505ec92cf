// Notification channels: webhook and e-mail; create, edit, send a test, and each channel's delivery log.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { when } from "../format.js";
import { badge, button, confirm, field, formError, input, notice, pageHeader, section, select, showErrors, showSecretOnce, table } from "../ui.js";

const EMAIL_FIELDS = [["host", "SMTP host"], ["port", "Port"], ["security", "Security"], ["username", "User name"], ["password", "Password"], ["sender", "Sender"], ["recipients", "Recipients (comma-separated)"]];

function target(c) {
  if (c.kind === "webhook") return c.config.url || "–";
  return (c.config.recipients || []).join(", ") || "–";
}

function editor(channel, onSaved, onCancel) {
  const name = input({ value: channel?.name || "", maxlength: 100 });
  const kind = select([["webhook", "webhook"], ["email", "e-mail"]], channel?.kind || "webhook");
  if (channel) kind.disabled = true;
  const slot = h("div");
  let inputs = {};
  const config = channel?.config || {};
  const draw = () => {
    inputs = {};
    const specs = kind.value === "webhook" ? [["url", "URL"], ["timeout_s", "Timeout (s)"]] : EMAIL_FIELDS;
    replace(slot, h("div", { class: "row wrap" }, specs.map(([key, label]) => {
      let el;
      if (key === "security") el = select([["starttls", "STARTTLS"], ["tls", "TLS"], ["none", "none"]], config.security || "starttls");
      else if (key === "password") el = input({ type: "password", autocomplete: "new-password", placeholder: channel ? "unchanged when empty" : "" });
      else el = input({ value: key === "recipients" ? (config.recipients || []).join(", ") : config[key] != null && config[key] !== "********" ? String(config[key]) : "", autocomplete: "off" });
      inputs[key] = el;
      return field(label, el, `config.${key}`);
    })));
  };
  kind.addEventListener("change", draw);
  draw();
  const form = h("form", {
    async onsubmit(event) {
      event.preventDefault();
      const cfg = {};
      for (const [key, el] of Object.entries(inputs)) {
        const v = el.value.trim();
        if (!v) continue;
        if (key === "recipients") cfg[key] = v.split(",").map((s) => s.trim()).filter(Boolean);
        else if (key === "port" || key === "timeout_s") cfg[key] = Number.isFinite(Number(v)) ? Number(v) : v;
        else cfg[key] = v;
      }
      try {
        const body = { name: name.value, kind: kind.value, config: cfg };
        const answer = channel ? await api.put(`/channels/${channel.id}`, body) : await api.post("/channels", body);
        onSaved(answer);
      } catch (err) {
        // A refused destination is the address's fault: say so beside it.
        if (err.code === "outbound_address_refused") err.details = [{ loc: ["config", kind.value === "webhook" ? "url" : "host"], msg: err.message }];
        showErrors(form, err);
      }
    },
  }, h("div", { class: "row" }, field("Name", name, "name"), field("Kind", kind, "kind")), slot, formError(),
  h("div", { class: "actions" }, button("Cancel", onCancel), button(channel ? "Save channel" : "Create channel", null, { kind: "primary", type: "submit" })));
  return form;
}

function deliveries(channel, slot) {
  api.get(`/channels/${channel.id}/deliveries`, { limit: 50 }).then((data) => replace(slot, section(`Delivery log: ${channel.name}`,
    table([
      { title: "When", cell: (d) => when(d.at) },
      { title: "Event", cell: (d) => d.event },
      { title: "Attempt", cell: (d) => d.attempt, class: "num" },
      { title: "Result", cell: (d) => (d.ok ? badge("delivered", "ok") : badge("failed", "bad")) },
      { title: "Status", cell: (d) => d.status_code ?? "–" },
      { title: "Error", cell: (d) => d.error || "" },
      { title: "Took", cell: (d) => `${d.duration_ms} ms`, class: "num" },
    ], data.deliveries || [], { empty: "Nothing delivered yet: alerts of rules that name this channel are sent here." }),
    h("div", { class: "actions" }, button("Close", () => replace(slot)))))).catch((err) => replace(slot, h("p", { class: "notice error" }, err.message)));
}

export async function render(main, ctx) {
  const message = h("div");
  const editSlot = h("div");
  const logSlot = h("div");
  const list = h("div");
  const open = (channel) => {
    replace(editSlot, section(channel ? `Edit channel: ${channel.name}` : "New channel", editor(channel, (answer) => {
      replace(editSlot);
      if (answer.secret) showSecretOnce("Webhook secret", answer.secret, "Each notification is signed with this secret (X-Telemetra-Signature). Copy it now: it is shown this once.");
      notice(message, channel ? "Channel saved." : "Channel created.", "ok");
      reload();
    }, () => replace(editSlot))));
    editSlot.querySelector("input").focus();
  };
  const draw = (channels) => {
    const columns = [
      { title: "Name", cell: (c) => c.name },
      { title: "Kind", cell: (c) => c.kind },
      { title: "Sends to", cell: (c) => target(c) },
      { title: "", class: "row-actions", cell: (c) => h("span", { class: "actions" },
        button("Delivery log", () => deliveries(c, logSlot), { kind: "small" }),
        ctx.can.admin ? button("Send a test", async () => {
          notice(message, `Sending a test to ${c.name}…`);
          try {
            const r = await api.post(`/channels/${c.id}/test`);
            notice(message, r.delivered ? `Test delivered to ${c.name}${r.status_code ? ` (HTTP ${r.status_code})` : ""}.` : `Test to ${c.name} failed: ${r.error || `HTTP ${r.status_code}`}`, r.delivered ? "ok" : "error");
          } catch (err) {
            notice(message, err.message, "error");
          }
        }, { kind: "small" }) : null,
        ctx.can.admin ? button("Edit", () => open(c), { kind: "small" }) : null,
        ctx.can.admin ? button("Delete", async () => {
          if (!(await confirm(`Delete channel "${c.name}"?`))) return;
          await api.del(`/channels/${c.id}`);
          reload();
        }, { kind: "small danger" }) : null) },
    ];
    replace(list, table(columns, channels, { empty: "No channels yet. A channel (a webhook or an e-mail address) receives the alerts of the rules that name it." }));
  };
  const reload = async () => draw((await api.get("/channels")).channels);
  replace(main, pageHeader("Channels", ctx.can.admin ? button("New channel", () => open(null), { kind: "primary" }) : null), message, editSlot, list, logSlot);
  await reload();
}
