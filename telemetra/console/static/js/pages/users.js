// The tenant's people (tenant admin): invite, change a role, disable, and a new one-time password.
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { when } from "../format.js";
import { badge, button, confirm, dialog, field, formError, input, notice, pageHeader, select, showErrors, showSecretOnce, table } from "../ui.js";

const ROLES = [["viewer", "viewer (reads)"], ["operator", "operator (+ commands, desired state, acknowledge)"], ["admin", "admin (+ devices, rules, channels, users)"]];

function addUser(onDone) {
  dialog("Add a user", (close) => {
    const email = input({ type: "email", autocomplete: "off" });
    const name = input({ maxlength: 100 });
    const role = select(ROLES, "viewer");
    const form = h("form", {
      async onsubmit(event) {
        event.preventDefault();
        try {
          const answer = await api.post("/users", { email: email.value.trim(), name: name.value.trim() || null, role: role.value });
          close();
          if (answer.password) showSecretOnce(`Password of ${answer.user.email}`, answer.password, "Give this password to the person: it is shown this once, and they can change it on their account page.");
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

export async function render(main, ctx) {
  const message = h("div");
  const list = h("div");
  const reload = async () => {
    const { items } = await api.get("/users");
    replace(list, table([
      { title: "Name", cell: (u) => u.name || "–" },
      { title: "E-mail", cell: (u) => u.email },
      { title: "Role", cell: (u) => {
        if (u.id === ctx.user.id) return badge(u.role, "role");
        const role = select(ROLES.map(([r]) => [r, r]), u.role, { "aria-label": `role of ${u.email}` });
        role.addEventListener("change", async () => {
          try {
            await api.patch(`/users/${u.id}`, { role: role.value });
            notice(message, `${u.email} is now ${role.value}.`, "ok");
          } catch (err) {
            notice(message, err.message, "error");
            role.value = u.role;
          }
        });
        return role;
      } },
      { title: "State", cell: (u) => (u.disabled ? badge("disabled", "bad") : badge("active", "ok")) },
      { title: "Last sign-in", cell: (u) => when(u.last_sign_in_at) },
      { title: "", class: "row-actions", cell: (u) => (u.id === ctx.user.id ? h("span", { class: "muted" }, "you") : h("span", { class: "actions" },
        button(u.disabled ? "Enable" : "Disable", async () => {
          await api.patch(`/users/${u.id}`, { disabled: !u.disabled });
          reload();
        }, { kind: "small" }),
        button("New password", async () => {
          if (!(await confirm(`Give ${u.email} a new password? The current one stops working.`, "New password"))) return;
          const answer = await api.post(`/users/${u.id}/password`);
          showSecretOnce(`New password of ${u.email}`, answer.password);
        }, { kind: "small" }))) },
    ], items, { empty: "No users yet." }));
  };
  replace(main, pageHeader("Users", button("Add a user", () => addUser(reload), { kind: "primary" })), message, list);
  await reload();
}
