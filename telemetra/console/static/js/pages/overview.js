import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { h, replace } from "../dom.js";
import { num } from "../format.js";
import { badge, pageHeader, section, table } from "../ui.js";

const SEVERITIES = ["critical", "major", "minor", "warning", "info"];
const REFRESH_MS = 30_000;

function stat(label, value, kind, href) {
  const body = [h("span", { class: "stat-value" }, num(value ?? 0)), h("span", { class: "stat-label" }, label)];
  return href ? h("a", { class: `stat ${kind}`, href }, body) : h("div", { class: `stat ${kind}` }, body);
}

export async function render(main, ctx) {
  const body = h("div", { class: "overview" });
  replace(main, pageHeader("Overview"), body);
  const draw = async () => {
    const data = await api.get("/overview");
    if (!ctx.isCurrent()) return;
    const devices = data.devices || {};
    const chart = h("div", { class: "chart-box" });
    const alerts = data.alerts_by_severity || {};
    const activeAlerts = SEVERITIES.reduce((sum, s) => sum + (alerts[s] || 0), 0);
    replace(
      body,
      h("div", { class: "stats" },
        stat("online", devices.online, "online", "/console/devices?online=true"),
        stat("offline", devices.offline, "offline", "/console/devices?online=false"),
        stat("never seen", devices.never_seen, "never"),
        stat("active alerts", activeAlerts, activeAlerts ? "alerting" : "", "/console/alerts")),
      section("Messages per minute, last 24 hours", chart),
      h("div", { class: "two" },
        section("Active alerts by severity",
          activeAlerts
            ? h("ul", { class: "severities" }, SEVERITIES.filter((s) => alerts[s]).map((s) => h("li", {}, badge(s, `sev-${s}`), h("span", {}, num(alerts[s])))))
            : h("p", { class: "empty" }, "No active alerts. Rules raise them; see Rules.")),
        section("Devices that sent most (since registered)",
          table(
            [
              { title: "Device", cell: (d) => h("a", { href: `/console/devices/${encodeURIComponent(d.device_id)}` }, d.name || d.device_id) },
              { title: "Messages", cell: (d) => num(d.count), class: "num" },
            ],
            data.top_devices || [],
            { empty: "No messages in the last 24 hours. Devices appear here once they send telemetry." },
          ))),
    );
    // The current minute is still counting: drawn, it would read as a sudden drop.
    const thisMinute = Math.floor(Date.now() / 60000) * 60000;
    const buckets = (data.messages_per_minute || []).filter((m) => new Date(m.t).getTime() < thisMinute).map((m) => ({ t: m.t, mean: m.count }));
    lineChart(chart, buckets, { intervalS: 60, label: "messages per minute", band: false, height: 200, empty: "No messages in the last 24 hours.", from: Date.now() - 86400e3, to: Date.now(), zero: true });
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}
