import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { button, field, formError, input, showErrors } from "../ui.js";

export function render(app, { onSignedIn }) {
  const email = input({ type: "email", autocomplete: "username", required: true });
  const password = input({ type: "password", autocomplete: "current-password", required: true });
  const error = formError();
  const submit = button("Sign in", null, { kind: "primary", type: "submit" });
  const form = h(
    "form",
    {
      class: "signin card",
      novalidate: true,
      async onsubmit(event) {
        event.preventDefault();
        submit.disabled = true;
        try {
          onSignedIn(await api.post("/session", { email: email.value.trim(), password: password.value }));
        } catch (err) {
          showErrors(form, err);
          if (err.code === "invalid_credentials") error.textContent = "Wrong e-mail or password.";
          else if (err.code === "too_many_attempts") error.textContent = "Too many attempts: wait a minute and try again.";
          password.value = "";
          password.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("div", { class: "brand big" }, h("img", { src: "/console/static/icon.svg", alt: "", width: 32, height: 32 }), "Telemetra"),
    h("h1", {}, "Sign in"),
    field("E-mail", email, "email"),
    field("Password", password, "password"),
    error,
    h("div", { class: "actions" }, submit),
    h("p", { class: "hint" }, "No account yet? Ask your tenant's admin. On a new install, `telemetra serve --demo` prints a demo sign-in."),
  );
  replace(app, h("main", { id: "main", class: "signin-page" }, form));
  email.focus();
}
