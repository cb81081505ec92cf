// The Device page's commands: an on/off switch, any named command with JSON parameters, and the history,
// whose states follow the live stream.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { value, when } from "../format.js";
import { badge, button, field, formError, input, showErrors, table } from "../ui.js";

const SHOWN = 20;
const STATUS_KIND = { succeeded: "ok", delivered: "ok", failed: "bad", expired: "bad", cancelled: "bad" };

export function commandsSection(deviceId, ctx, status) {
  const path = `/devices/${encodeURIComponent(deviceId)}/commands`;
  const history = h("div");
  const el = h("section", { class: "card" }, h("h2", {}, "Commands"));
  let commands = [];

  const drawHistory = () => replace(history, table(
    [
      { title: "Sent", cell: (c) => when(c.created_at) },
      { title: "Command", cell: (c) => h("span", {}, h("code", {}, c.name), " ", h("small", { class: "muted" }, Object.keys(c.params || {}).length ? value(c.params) : "")) },
      { title: "State", cell: (c) => h("span", { "data-command": c.id }, badge(c.status, STATUS_KIND[c.status] || "")) },
      { title: "Result", cell: (c) => (c.result == null ? "–" : value(c.result)) },
    ],
    commands,
    { empty: "No commands sent to this device yet." },
  ));
  const reload = async () => {
    const data = await api.get(path, { limit: SHOWN });
    commands = data.commands || [];
    drawHistory();
  };
  const send = async (name, params) => {
    const answer = await api.post(path, { name, params });
    commands = [answer.command, ...commands.filter((c) => c.id !== answer.command.id)].slice(0, SHOWN);
    drawHistory();
    return answer.command;
  };

  if (ctx.can.operate) {
    const name = input({ placeholder: "e.g. reboot", maxlength: 64, autocomplete: "off" });
    const params = h("textarea", { rows: 2, placeholder: '{"delay_s": 5}', spellcheck: "false" });
    const form = h("form", {
      class: "command-form",
      async onsubmit(event) {
        event.preventDefault();
        let parsed = {};
        try {
          parsed = params.value.trim() ? JSON.parse(params.value) : {};
        } catch {
          showErrors(form, { details: [{ loc: ["params"], msg: "not valid JSON" }] });
          return;
        }
        try {
          await send(name.value.trim(), parsed);
          name.value = "";
          params.value = "";
        } catch (err) {
          showErrors(form, err);
        }
      },
    }, h("div", { class: "row" }, field("Command", name, "name"), field("Parameters (JSON)", params, "params")), formError(),
      h("div", { class: "actions" }, button("Send command", null, { type: "submit" })));
    const switchError = h("span", { class: "form-error", role: "alert" });
    const onOff = (on) => async () => {
      switchError.textContent = "";
      try {
        await send("switch", { switch: on });
      } catch (err) {
        switchError.textContent = err.message;
      }
    };
    el.append(
      h("div", { class: "switch-row" }, h("span", {}, "Switch"),
        button("On", onOff(true), { kind: "primary", label: "switch on" }),
        button("Off", onOff(false), { label: "switch off" }), switchError),
      form,
    );
  }
  el.append(h("h3", {}, "History"), history);
  reload().catch((err) => replace(history, h("p", { class: "notice error" }, err.message)));

  return {
    el,
    update(event) {
      const known = commands.find((c) => c.id === event.command_id);
      if (known) {
        known.status = event.status;
        drawHistory();
        if (["succeeded", "failed"].includes(event.status)) reload().catch(() => {}); // its result
      } else reload().catch(() => {});
    },
  };
}
