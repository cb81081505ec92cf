// Platform administration: tenants, their keys (issued once, revoked) and their users.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { when } from "../format.js";
import { badge, button, confirm, dialog, field, formError, input, notice, pageHeader, section, select, showErrors, showSecretOnce, table } from "../ui.js";

function createTenant(onDone) {
  dialog("New tenant", (close) => {
    const name = input({ maxlength: 100 });
    const form = h("form", {
      async onsubmit(event) {
        event.preventDefault();
        try {
          const answer = await api.post("/admin/tenants", { name: name.value.trim() });
          close();
          showSecretOnce(`First key of ${answer.tenant.name}`, answer.api_key, "A full key of the new tenant. Copy it now: it is shown this once.");
          onDone();
        } catch (err) {
          showErrors(form, err);
        }
      },
    }, field("Name", name, "name"), formError(), h("div", { class: "actions" }, button("Cancel", close), button("Create tenant", null, { kind: "primary", type: "submit" })));
    return form;
  });
}

function issueKey(tenant, onDone) {
  dialog(`New key for ${tenant.name}`, (close) => {
    const name = input({ maxlength: 100 });
    const scope = select([["full", "full (every tenant route)"], ["ingest", "ingest (sends telemetry only)"]], "full");
    const form = h("form", {
      async onsubmit(event) {
        event.preventDefault();
        try {
          const answer = await api.post(`/admin/tenants/${tenant.id}/keys`, { name: name.value.trim(), scope: scope.value });
          close();
          showSecretOnce(`New key of ${tenant.name}`, answer.api_key);
          onDone();
        } catch (err) {
          showErrors(form, err);
        }
      },
    }, field("Label", name, "name"), field("Scope", scope, "scope"), formError(), h("div", { class: "actions" }, button("Cancel", close), button("Issue key", null, { kind: "primary", type: "submit" })));
    return form;
  });
}

function addUser(tenant, onDone) {
  dialog(`New user of ${tenant.name}`, (close) => {
    const email = input({ type: "email", autocomplete: "off" });
    const name = input({ maxlength: 100 });
    const role = select([["admin", "admin"], ["operator", "operator"], ["viewer", "viewer"]], "admin");
    const form = h("form", {
      async onsubmit(event) {
        event.preventDefault();
        try {
          const answer = await api.post(`/admin/tenants/${tenant.id}/users`, { email: email.value.trim(), name: name.value.trim() || null, role: role.value });
          close();
          if (answer.password) showSecretOnce(`Password of ${answer.user.email}`, answer.password, "Give this one-time password to the person: it is shown this once.");
          onDone();
        } catch (err) {
          showErrors(form, err);
        }
      },
    }, field("E-mail", email, "email"), field("Name", name, "name"), field("Role", role, "role"), formError(),
    h("div", { class: "actions" }, button("Cancel", close), button("Add user", null, { kind: "primary", type: "submit" })));
    return form;
  });
}

async function tenantDetail(tenant, slot, message) {
  const keys = await api.get(`/admin/tenants/${tenant.id}/keys`);
  const users = await api.get(`/admin/tenants/${tenant.id}/users`).catch(() => null);
  const reload = () => tenantDetail(tenant, slot, message);
  replace(slot, section(`Tenant: ${tenant.name}`,
    h("div", { class: "section-head" }, h("h3", {}, "Keys"), button("Issue a key", () => issueKey(tenant, reload), { kind: "small" })),
    table([
      { title: "Label", cell: (k) => k.name || "–" },
      { title: "Prefix", cell: (k) => h("code", {}, k.prefix) },
      { title: "Scope", cell: (k) => k.scope },
      { title: "Created", cell: (k) => when(k.created_at) },
      { title: "State", cell: (k) => (k.revoked_at ? badge("revoked", "bad") : k.status ? badge(k.status) : badge("active", "ok")) },
      { title: "", cell: (k) => (k.revoked_at ? "" : button("Revoke", async () => {
        if (!(await confirm(`Revoke key ${k.prefix}… of ${tenant.name}? It stops working at once.`, "Revoke"))) return;
        try {
          await api.del(`/admin/tenants/${tenant.id}/keys/${k.id}`);
          reload();
        } catch (err) {
          notice(message, err.message, "error");
        }
      }, { kind: "small danger" })) },
    ], keys.keys || [], { empty: "No keys." }),
    users ? [h("div", { class: "section-head" }, h("h3", {}, "Users"), button("Add a user", () => addUser(tenant, reload), { kind: "small" })), table([
      { title: "Name", cell: (u) => u.name || "–" },
      { title: "E-mail", cell: (u) => u.email },
      { title: "Role", cell: (u) => u.role },
      { title: "Last sign-in", cell: (u) => when(u.last_sign_in_at) },
    ], users.items || [], { empty: "No users in this tenant yet." })] : null,
    h("div", { class: "actions" }, button("Close", () => replace(slot)))));
}

export async function render(main, ctx) {
  const message = h("div");
  const detail = h("div");
  const list = h("div");
  const reload = async () => {
    const { tenants } = await api.get("/admin/tenants");
    replace(list, table([
      { title: "Id", cell: (t) => t.id, class: "num" },
      { title: "Tenant", cell: (t) => t.name },
      { title: "Devices", cell: (t) => t.device_count ?? "–", class: "num" },
      { title: "Retention", cell: (t) => (t.retention_days ? `${t.retention_days} days` : "forever") },
      { title: "Created", cell: (t) => when(t.created_at) },
      { title: "", cell: (t) => button("Keys and users", () => tenantDetail(t, detail, message).catch((e) => notice(message, e.message, "error")), { kind: "small" }) },
    ], tenants, { empty: "No tenants yet." }));
  };
  replace(main, pageHeader("Admin", button("New tenant", () => createTenant(reload), { kind: "primary" })), message, list, detail);
  await reload();
}
