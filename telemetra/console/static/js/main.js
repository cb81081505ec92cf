// The console's shell: who is signed in, the menu their role allows, and the page the path names. Pages are
// modules loaded when first opened, so the first load stays small.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { closeStream } from "./live.js";
import { badge, button } from "./ui.js";

const BASE = "/console/";
// menu: shown in the menu; need: "tenant" (a tenant's user), "admin" (tenant admin), "platform" (platform admin).
const PAGES = [
  { path: "", title: "Overview", module: "overview", menu: true, need: "tenant" },
  { path: "devices", title: "Devices", module: "devices", menu: true, need: "tenant" },
  { path: "devices/:id", title: "Device", module: "device", need: "tenant" },
  { path: "alerts", title: "Alerts", module: "alerts", menu: true, need: "tenant" },
  { path: "rules", title: "Rules", module: "rules", menu: true, need: "tenant" },
  { path: "channels", title: "Channels", module: "channels", menu: true, need: "tenant" },
  { path: "energy", title: "Energy", module: "energy", menu: true, need: "tenant" },
  { path: "watch", title: "Watch", module: "watch", menu: true, need: "tenant" },
  { path: "users", title: "Users", module: "users", menu: true, need: "admin" },
  { path: "admin", title: "Admin", module: "admin", menu: true, need: "platform" },
  { path: "account", title: "Account", module: "account" },
];

let session = null;
let renderId = 0;
let cleanup = null;

function allowed(page, user) {
  if (page.need === "platform") return user.platform_admin;
  if (page.need === "tenant") return user.tenant_id != null;
  if (page.need === "admin") return user.tenant_id != null && user.role === "admin";
  return true;
}

function match(path) {
  const parts = path.split("/").filter(Boolean);
  for (const page of PAGES) {
    const pattern = page.path.split("/").filter(Boolean);
    if (pattern.length !== parts.length) continue;
    const params = {};
    if (pattern.every((p, i) => (p.startsWith(":") ? ((params[p.slice(1)] = decodeURIComponent(parts[i])), true) : p === parts[i]))) {
      return { page, params };
    }
  }
  return null;
}

export function go(path, { replaceState = false } = {}) {
  const url = BASE + path.replace(/^\//, "");
  if (replaceState) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

function context(user) {
  return {
    user,
    can: {
      operate: user.role === "admin" || user.role === "operator",
      admin: user.role === "admin",
      platform: Boolean(user.platform_admin),
    },
    go,
    onLeave(fn) {
      cleanup = fn;
    },
  };
}

function menu(user, current) {
  const items = PAGES.filter((p) => p.menu && allowed(p, user));
  return h(
    "nav",
    { class: "menu", id: "menu", "aria-label": "main" },
    h("ul", {}, items.map((p) => h("li", {}, h("a", { href: BASE + p.path, "aria-current": p === current ? "page" : null }, p.title)))),
  );
}

function topBar(user) {
  const toggle = button("Menu", () => document.body.classList.toggle("menu-open"), { kind: "menu-toggle" });
  toggle.setAttribute("aria-controls", "menu");
  return h(
    "header",
    { class: "top" },
    toggle,
    h("a", { class: "brand", href: BASE }, h("img", { src: "/console/static/icon.svg", alt: "", width: 22, height: 22 }), "Telemetra"),
    h("span", { class: "tenant", title: "tenant" }, user.tenant_name || (user.platform_admin ? "Platform" : "")),
    h(
      "div",
      { class: "who" },
      h("a", { href: `${BASE}account`, class: "user", title: "your account" }, user.name || user.email),
      badge(user.platform_admin && user.tenant_id == null ? "platform admin" : user.role, "role"),
      button("Sign out", signOut, { kind: "small" }),
    ),
  );
}

async function signOut() {
  try {
    await api.del("/session");
  } catch {
    // already signed out: the sign-in page follows either way
  }
  session = null;
  go("signin", { replaceState: true });
}

async function route() {
  const id = ++renderId;
  closeStream();
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  document.body.classList.remove("menu-open");
  const app = document.getElementById("app");
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  if (!session) {
    try {
      session = await api.get("/session");
    } catch {
      session = null;
    }
  }
  if (id !== renderId) return;
  if (!session) {
    const mod = await import("./pages/signin.js");
    document.title = "Sign in · Telemetra";
    mod.render(app, {
      onSignedIn(info) {
        session = info;
        go(path === "signin" ? "" : path, { replaceState: true });
      },
    });
    return;
  }
  const user = session.user;
  let found = path === "signin" ? null : match(path);
  if (path === "signin" || (found && found.page.path === "" && !allowed(found.page, user) && user.platform_admin)) {
    go(user.tenant_id != null ? "" : "admin", { replaceState: true });
    return;
  }
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(app, topBar(user), h("div", { class: "body" }, menu(user, found && found.page), main));
  if (!found || !allowed(found.page, user)) {
    document.title = "Not found · Telemetra";
    replace(main, h("h1", {}, "Not found"), h("p", {}, "There is no such page, or your role may not open it."), h("p", {}, h("a", { href: BASE }, "Back to the overview")));
    return;
  }
  document.title = `${found.page.title} · Telemetra`;
  const mod = await import(`./pages/${found.page.module}.js`);
  if (id !== renderId) return;
  try {
    await mod.render(main, { ...context(user), params: found.params, isCurrent: () => id === renderId });
  } catch (error) {
    if (id !== renderId) return;
    const text = error.status === 404 ? "Not found: it does not exist, or it is not your tenant's." : error.message;
    replace(main, h("h1", {}, error.status === 404 ? "Not found" : "Something went wrong"), h("p", { class: "notice error" }, text));
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE) || link.hasAttribute("download") || link.target) return;
  event.preventDefault();
  history.pushState(null, "", url.pathname + url.search);
  route();
});
window.addEventListener("popstate", route);
window.addEventListener("signed-out", () => {
  if (session) {
    session = null;
    route();
  }
});
route();
