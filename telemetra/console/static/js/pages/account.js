import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { when } from "../format.js";
import { button, field, formError, input, notice, pageHeader, section, showErrors } from "../ui.js";

export function render(main, { user }) {
  const current = input({ type: "password", autocomplete: "current-password" });
  const next = input({ type: "password", autocomplete: "new-password" });
  const status = h("div");
  const form = h(
    "form",
    {
      async onsubmit(event) {
        event.preventDefault();
        try {
          await api.put("/session/password", { current_password: current.value, new_password: next.value });
          current.value = next.value = "";
          notice(status, "Password changed.", "ok");
        } catch (err) {
          showErrors(form, err);
        }
      },
    },
    field("Current password", current, "current_password"),
    field("New password", next, "new_password"),
    formError(),
    h("div", { class: "actions" }, button("Change password", null, { kind: "primary", type: "submit" })),
  );
  replace(
    main,
    pageHeader("Your account"),
    section(
      "You",
      h("dl", { class: "meta" },
        h("dt", {}, "Name"), h("dd", {}, user.name || "–"),
        h("dt", {}, "E-mail"), h("dd", {}, user.email),
        h("dt", {}, "Tenant"), h("dd", {}, user.tenant_name || "none (platform)"),
        h("dt", {}, "Role"), h("dd", {}, user.role),
        h("dt", {}, "Last sign-in"), h("dd", {}, when(user.last_sign_in_at))),
    ),
    section("Change your password", status, form),
  );
}
