// The patrol view, phone-sized: the alarms dispatched to me, the vehicle's live position and
// route, and a report with comments and photos; then resolve.

import { all, api, ApiError } from "../api";
import { h, replace, when } from "../dom";
import type { Ctx } from "../main";
import { MapView, type Overlay } from "../map";
import { actions, gradeBadge, human, stateOf, byGradeAndAge, type AlarmRecord } from "./alarms";
import type { MapItem } from "./map";

export async function patrolPage(ctx: Ctx): Promise<void> {
  ctx.main.classList.add("phone");
  ctx.cleanup(() => ctx.main.classList.remove("phone"));
  const list = h("div", { id: "dispatches" }, h("p", { class: "loading" }, "Loading my dispatches…"));
  replace(ctx.main, h("h1", null, "My dispatches"), list);
  const maps: MapView[] = [];
  const load = async () => {
    try {
      const [alarms, map] = await Promise.all([
        all<AlarmRecord>("/alarms", 5000),
        api<{ items: (MapItem & { route?: any })[] }>("/map"),
      ]);
      const vehicles = new Map(map.items.map((m) => [m.id, m]));
      const open = alarms.filter((a) => !["closed"].includes(stateOf(a))).sort(byGradeAndAge);
      maps.length = 0;
      replace(
        list,
        open.length === 0 ? h("p", { class: "muted", id: "no-dispatch" }, "No alarm is dispatched to you.") : null,
        open.map((a) => card(ctx, a, vehicles.get(a.alarm.transit), maps, load)),
      );
    } catch (e) {
      replace(list, h("p", { class: "error", role: "alert" }, `Cannot load: ${(e as Error).message}`));
    }
  };
  await load();
  let timer: number | undefined;
  const unsub = ctx.live.subscribe((k) => {
    if ((k === "alarm_update" || k === "event") && timer === undefined)
      timer = window.setTimeout(() => {
        timer = undefined;
        load();
      }, 500);
  });
  const poll = window.setInterval(load, 15000);
  ctx.cleanup(() => {
    unsub();
    clearInterval(poll);
  });
}

function card(ctx: Ctx, a: AlarmRecord, vehicle: (MapItem & { route?: any }) | undefined, maps: MapView[], reload: () => void): HTMLElement {
  const mapHost = h("div", { class: "map-host phone-map" });
  const note = h("textarea", { id: `report-note-${a.id}`, rows: 3, "aria-label": "What you found", placeholder: "What you found" });
  const photo = h("input", { id: `report-photo-${a.id}`, type: "file", accept: "image/jpeg,image/png,image/webp", capture: "environment", "aria-label": "Photo" });
  const status = h("p", { role: "status" });
  const send = h("button", { class: "primary", type: "submit" }, "Send report");
  const resolved = ["resolved", "closed"].includes(stateOf(a));
  const form = h(
    "form",
    {
      class: "report",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        if (!note.value.trim()) {
          status.className = "error";
          status.textContent = "Write what you found before sending.";
          note.focus();
          return;
        }
        send.disabled = true;
        status.className = "";
        status.textContent = "Sending…";
        try {
          await api(`/alarms/${a.id}/report`, { method: "POST", body: { actor: ctx.session.username, note: note.value } });
          const file = photo.files?.[0];
          if (file) {
            await api(`/alarms/${a.id}/attachments?name=${encodeURIComponent(file.name)}&actor=${encodeURIComponent(ctx.session.username)}`, {
              method: "POST",
              raw: file,
              contentType: file.type || "image/jpeg",
            });
          }
          status.className = "ok";
          status.textContent = file ? "Report and photo sent." : "Report sent.";
          note.value = "";
          photo.value = "";
        } catch (err) {
          status.className = "error";
          status.textContent = err instanceof ApiError ? `Refused: ${err.message}` : String(err);
        } finally {
          send.disabled = false;
        }
      },
    },
    h("label", { for: note.id }, "Report"),
    note,
    h("label", { for: photo.id }, "Photo"),
    photo,
    send,
    status,
  );
  const el = h(
    "article",
    { class: "dispatch card", "data-alarm": a.id },
    h("h2", null, gradeBadge(a.alarm.grade), ` ${human(a.alarm.kind)}`),
    h("p", null, a.alarm.detail),
    h(
      "p",
      { class: "muted" },
      `Transit ${a.alarm.transit} · raised ${when(a.alarm.t)} · ${human(stateOf(a))}`,
      vehicle?.plate ? ` · plate ${vehicle.plate}` : "",
    ),
    mapHost,
    vehicle?.at ? h("p", { class: "muted" }, `Vehicle last seen ${when(vehicle.t)}`) : h("p", { class: "muted" }, "No position of the vehicle yet."),
    resolved ? null : form,
    actions(ctx, a, reload, { patrol: true }),
    a.history.length ? h("details", null, h("summary", null, "Handling so far"), h("ol", { class: "plain" }, a.history.map((s) => h("li", null, `${when(s.at)} ${s.actor}: ${s.step}${s.note ? ` — ${s.note}` : ""}`)))) : null,
  );
  requestAnimationFrame(() => {
    const view = new MapView(mapHost);
    maps.push(view);
    const overlays: Overlay[] = [];
    if (vehicle?.route?.type === "LineString") overlays.push({ kind: "line", coordinates: vehicle.route.coordinates, color: "#1565c0", width: 3, dash: [6, 4] });
    if (a.alarm.lon !== undefined && a.alarm.lat !== undefined) overlays.push({ kind: "point", coordinates: [a.alarm.lon, a.alarm.lat], color: "#c0392b", width: 7 });
    if (vehicle?.at) overlays.push({ kind: "point", coordinates: vehicle.at, color: "#000", width: 8 });
    view.overlays = overlays;
    const c = vehicle?.at ?? (a.alarm.lon !== undefined ? [a.alarm.lon, a.alarm.lat!] : null);
    if (c) {
      view.center = c as [number, number];
      view.zoom = 11;
    }
    view.request();
  });
  return el;
}
