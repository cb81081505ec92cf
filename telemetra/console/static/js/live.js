// One live stream per page: telemetry, command and alert events of the devices the page shows, over one
// Server-Sent Events connection carried by the session cookie (a browser opens at most 6 per host).

let current = null;

export function openStream(deviceIds, handlers) {
  closeStream();
  const ids = [...new Set(deviceIds)].filter(Boolean);
  if (!ids.length) return;
  const source = new EventSource(`/api/v1/stream/console?devices=${encodeURIComponent(ids.join(","))}`);
  for (const kind of ["telemetry", "command", "alert"]) {
    if (!handlers[kind]) continue;
    source.addEventListener(kind, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handlers[kind](data);
    });
  }
  source.addEventListener("open", () => handlers.status && handlers.status("live"));
  source.addEventListener("error", () => handlers.status && handlers.status("reconnecting"));
  current = source;
}

export function closeStream() {
  if (current) current.close();
  current = null;
}
