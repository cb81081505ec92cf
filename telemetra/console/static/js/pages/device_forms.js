// Register, edit, delete a device and rotate its key: used by the Devices list and the Device page.
import { api } from "../api.js";
import { h } from "../dom.js";
import { button, confirm, dialog, field, formError, input, select, showErrors, showSecretOnce } from "../ui.js";

const STATUSES = [["active", "active"], ["inactive", "inactive"], ["maintenance", "maintenance"]];

function deviceForm(device, onSubmit, submitText) {
  const fields = {
    id: input({ value: "", placeholder: "generated when empty", maxlength: 128, autocomplete: "off" }),
    name: input({ value: device?.name || "", maxlength: 100, required: true }),
    type: input({ value: device?.type || device?.device_type || "sensor", maxlength: 50 }),
    location: input({ value: device?.location || "", maxlength: 200 }),
    status: select(STATUSES, device?.status || "active"),
    metadata: h("textarea", { rows: 3, spellcheck: "false", class: "code" }, JSON.stringify(device?.metadata ?? device?.attributes ?? {}, null, 2)),
  };
  const hasMetadata = Boolean(device && (device.metadata || device.attributes));
  return (close) => {
    const form = h(
      "form",
      {
        async onsubmit(event) {
          event.preventDefault();
          try {
            await onSubmit(fields, close);
          } catch (err) {
            showErrors(form, err);
          }
        },
      },
      device ? null : field("Device id", fields.id, "id", "Letters, digits, - _ . : (the id the device sends with)"),
      field("Name", fields.name, "name"),
      field("Type", fields.type, device ? "type" : "device_type"),
      field("Location", fields.location, "location"),
      device ? field("Status", fields.status, "status") : null,
      hasMetadata ? field("Metadata (JSON object)", fields.metadata, "metadata") : null,
      formError(),
      h("div", { class: "actions" }, button("Cancel", close), button(submitText, null, { kind: "primary", type: "submit" })),
    );
    return form;
  };
}

export function registerDevice(onDone) {
  dialog("Register a device", deviceForm(null, async (f, close) => {
    const body = { name: f.name.value, device_type: f.type.value || "sensor" };
    if (f.id.value.trim()) body.id = f.id.value.trim();
    if (f.location.value.trim()) body.location = f.location.value.trim();
    const answer = await api.post("/devices/register", body);
    close();
    showSecretOnce(`Key of ${answer.device.id}`, answer.device.api_key, "The device sends with this key (X-API-Key). Copy it now: it is shown this once.");
    onDone(answer.device);
  }, "Register"));
}

export function editDevice(device, onDone) {
  const id = device.device_id || device.id;
  dialog(`Edit ${id}`, deviceForm(device, async (f, close) => {
    const body = { name: f.name.value, type: f.type.value, location: f.location.value || null, status: f.status.value };
    if (device.metadata || device.attributes) {
      try {
        body.metadata = JSON.parse(f.metadata.value || "{}");
      } catch {
        throw Object.assign(new Error("not valid JSON"), { details: [{ loc: ["metadata"], msg: "not valid JSON" }] });
      }
    }
    const answer = await api.patch(`/devices/${encodeURIComponent(id)}`, body);
    close();
    onDone(answer);
  }, "Save"));
}

export async function deleteDevice(device, onDone) {
  const id = device.device_id || device.id;
  if (!(await confirm(`Delete device ${id} and all its data? This cannot be undone.`))) return;
  await api.del(`/devices/${encodeURIComponent(id)}`);
  onDone();
}

export async function rotateKey(device) {
  const id = device.device_id || device.id;
  if (!(await confirm(`Give ${id} a new key? Its current key stops working.`, "Rotate key"))) return;
  const answer = await api.post(`/devices/${encodeURIComponent(id)}/key/rotate`, {});
  showSecretOnce(`New key of ${id}`, answer.api_key);
}
