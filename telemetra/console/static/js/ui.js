// Small pieces every page uses: tables, forms with errors beside their field, dialogs, pagers, badges.
import { h, replace } from "./dom.js";

export function button(text, onclick, { kind = "", type = "button", label } = {}) {
  return h("button", { type, class: `btn ${kind}`.trim(), onclick, "aria-label": label }, text);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

export function dot(online) {
  const state = online === true ? "online" : online === false ? "offline" : "unknown";
  return h("span", { class: `dot ${state}`, title: state, role: "img", "aria-label": state });
}

export function table(columns, rows, { empty = "Nothing here yet.", caption } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.title)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class, "data-label": c.title }, c.cell(row)))))),
    ),
  );
}

// A labelled input with a place for its error; `name` is the API's field path (e.g. "condition.value").
export function field(labelText, input, name, hint) {
  const id = `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  if (name) input.name = name;
  const error = h("span", { class: "field-error", id: `${id}-err`, "aria-live": "polite" });
  input.setAttribute("aria-describedby", `${id}-err`);
  return h("div", { class: "field", "data-field": name || "" }, h("label", { for: id }, labelText), input, hint ? h("small", { class: "hint" }, hint) : null, error);
}

export function input(attrs = {}) {
  return h("input", { type: "text", ...attrs });
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value ?? "") }, text)));
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  const general = form.querySelector(".form-error");
  if (general) general.textContent = "";
}

// The API's 422 details ({loc, msg}) shown beside the field they name; the rest above the buttons.
export function showErrors(form, error) {
  clearErrors(form);
  const fields = [...form.querySelectorAll(".field[data-field]")].filter((f) => f.dataset.field);
  const left = [];
  for (const detail of error.details || []) {
    const loc = (detail.loc || []).filter((p) => p !== "body");
    const path = loc.join(".");
    // A tagged union adds its tag ("condition.threshold.value"): match the field by its first and last parts.
    const target = fields.find((f) => f.dataset.field === path)
      || fields.find((f) => loc.length > 1 && f.dataset.field === `${loc[0]}.${loc[loc.length - 1]}`)
      || fields.find((f) => f.dataset.field === loc[0]);
    if (target) {
      const slot = target.querySelector(".field-error");
      slot.textContent = slot.textContent ? `${slot.textContent}; ${detail.msg}` : detail.msg;
      const control = target.querySelector("input, select, textarea");
      if (control) control.classList.add("invalid");
    } else left.push(`${path || "body"}: ${detail.msg}`);
  }
  const general = form.querySelector(".form-error");
  const text = left.length ? left.join("; ") : error.details && error.details.length ? "" : error.message;
  if (general) general.textContent = text;
  const first = form.querySelector(".invalid");
  if (first) first.focus();
}

export function formError() {
  return h("p", { class: "form-error", role: "alert" });
}

export function notice(el, text, kind = "info") {
  replace(el, text ? h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text) : null);
}

let dialogCount = 0;

// A modal dialog; `build(close)` returns its content. Closed with Escape or its buttons.
export function dialog(title, build) {
  const titleId = `dlg-${++dialogCount}`;
  const el = h("dialog", { class: "dialog", "aria-labelledby": titleId });
  const close = () => {
    el.close();
    el.remove();
  };
  el.append(h("h2", { id: titleId }, title), build(close));
  el.addEventListener("close", () => el.remove());
  document.body.append(el);
  el.showModal();
  return close;
}

export function confirm(text, actionText = "Delete") {
  return new Promise((resolve) => {
    dialog("Are you sure?", (close) =>
      h(
        "div",
        {},
        h("p", {}, text),
        h("div", { class: "actions" },
          button("Cancel", () => { close(); resolve(false); }),
          button(actionText, () => { close(); resolve(true); }, { kind: "danger" })),
      ),
    );
  });
}

// A secret shown this one time: in a dialog, never kept in the page after it closes.
export function showSecretOnce(title, secret, note) {
  dialog(title, (close) => {
    const box = h("input", { class: "secret", readonly: true, value: secret, "aria-label": "secret shown once", spellcheck: "false" });
    const copied = h("span", { class: "hint", "aria-live": "polite" });
    return h(
      "div",
      {},
      h("p", {}, note || "Copy it now: it is shown this once and cannot be read again."),
      box,
      h("div", { class: "actions" },
        copied,
        button("Copy", async () => {
          box.select();
          try {
            await navigator.clipboard.writeText(secret);
            copied.textContent = "Copied.";
          } catch {
            copied.textContent = "Selected: press Ctrl+C.";
          }
        }),
        button("Done", () => { box.value = ""; close(); }, { kind: "primary" })),
    );
  });
}

export function pager({ page, hasNext, onPage, total, perPage }) {
  const pages = total != null && perPage ? Math.max(1, Math.ceil(total / perPage)) : null;
  const prev = button("← Previous", () => onPage(page - 1), { kind: "small" });
  const next = button("Next →", () => onPage(page + 1), { kind: "small" });
  prev.disabled = page <= 1;
  next.disabled = !hasNext;
  const where = pages ? `Page ${page} of ${pages}` : `Page ${page}`;
  return h("nav", { class: "pager", "aria-label": "pages" }, prev, h("span", {}, where), next);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-head" }, h("h1", {}, title), h("div", { class: "actions" }, ...actions));
}
