// A transit: its declaration (personal data only for customs), the route corridor and zones on
// the map, the track with a time slider to replay the journey, events and alarms on a
// timeline, the seal-state history, and the release-or-inspect decision.

import { all, api, ApiError } from "../api";
import { downloadCsv, downloadFrom, h, replace, when } from "../dom";
import { CAN, type Ctx } from "../main";
import { MapView, COLORS, type Overlay } from "../map";
import { gradeBadge, human, stateOf, type AlarmRecord } from "./alarms";

interface TrackPoint {
  geometry: { coordinates: [number, number] };
  properties: { t: string; lock?: string; rope?: string; battery_pct?: number; speed_kmh?: number };
}

interface Zone {
  id: string;
  kind: string;
  name?: string;
  area: { type: string; coordinates: any };
  radius_m?: number;
}

const ZONE_COLORS: Record<string, string> = {
  office: "#1565c0",
  checkpoint: "#6a1b9a",
  fuel: "#00838f",
  rest: "#2e7d32",
  forbidden: "#c62828",
};

export function zoneOverlays(zones: Zone[]): Overlay[] {
  return zones.map((z) => {
    const color = ZONE_COLORS[z.kind] ?? "#455a64";
    if (z.area.type === "Point")
      return { kind: "point", coordinates: z.area.coordinates, color, radiusM: z.radius_m ?? 200, label: z.name ?? z.id };
    return { kind: "area", coordinates: z.area.coordinates, color, label: z.name ?? z.id };
  });
}

export async function transitPage(ctx: Ctx, id: string): Promise<void> {
  replace(ctx.main, h("h1", null, `Transit ${id}`), h("p", { class: "loading" }, "Loading the transit…"));
  let t: any;
  try {
    t = await api(`/transits/${encodeURIComponent(id)}`);
  } catch (e) {
    replace(
      ctx.main,
      h("h1", null, `Transit ${id}`),
      h("p", { class: "error", role: "alert" }, e instanceof ApiError && e.status === 404 ? "No such transit, or not yours to see." : `Cannot load it: ${(e as Error).message}`),
    );
    return;
  }
  const enc = encodeURIComponent(id);
  const [track, events, alarms, zones] = await Promise.all([
    api<{ features: TrackPoint[] }>(`/transits/${enc}/track?format=points&limit=100000`).catch(() => ({ features: [] })),
    all<any>(`/transits/${enc}/events`, 20000).catch(() => []),
    all<AlarmRecord>(`/transits/${enc}/alarms`, 5000).catch(() => []),
    api<Zone[]>("/zones").catch(() => [] as Zone[]),
  ]);
  const tr = t.transit;
  const points = track.features ?? [];
  const wanted = new Set([tr.departure, tr.destination, ...(tr.stop_zones ?? []), ...(tr.unseal_zones ?? [])]);
  const myZones = (Array.isArray(zones) ? zones : []).filter((z) => wanted.has(z.id));

  // The declaration.
  const d = tr.declaration ?? {};
  const v = tr.vehicle ?? {};
  const rows: [string, unknown][] = [
    ["State", human(t.state)],
    ["Device", tr.device],
    ["Mode", tr.mode],
    ["Route", `${tr.departure ?? "?"} → ${tr.destination ?? "?"}`],
    ["Sealed at", when(tr.sealed_at)],
    ["Deadline", when(tr.deadline)],
    ["Declaration", d.number],
    ["Carrier", d.carrier],
    ["Forwarder", d.forwarder],
    ["Consignor", d.consignor],
    ["Plate", v.plate],
    ["Containers", (v.containers ?? []).join(", ")],
    ["Cargo", (tr.cargo ?? []).map((c: any) => `${c.type} (${c.quantity} ${c.unit})`).join("; ")],
  ];
  if (CAN.personal(ctx.session.role) && tr.driver) {
    rows.push(["Driver", `${tr.driver.name}${tr.driver.contact ? ` · ${tr.driver.contact}` : ""}`]);
  }
  const declaration = h(
    "dl",
    { class: "facts", id: "declaration" },
    rows.filter(([, x]) => x).map(([k, x]) => [h("dt", null, k), h("dd", { "data-field": k.toLowerCase() }, String(x))]),
  );

  // The map, the slider and the timeline.
  const mapHost = h("div", { class: "map-host small", id: "transit-map" });
  const slider = h("input", {
    type: "range",
    id: "replay",
    min: 0,
    max: Math.max(0, points.length - 1),
    value: Math.max(0, points.length - 1),
    "aria-label": "Replay the journey: position in time",
    disabled: points.length === 0,
  });
  const at = h("output", { id: "replay-time", for: "replay" }, points.length ? when(points[points.length - 1].properties.t) : "no reports yet");
  const play = h("button", { id: "replay-play", disabled: points.length < 2 }, "▶ Play");
  const readout = h("span", { class: "muted", id: "replay-readout" });

  const alarmed = alarms.filter((a) => !["resolved", "closed"].includes(stateOf(a)));
  const items = [
    ...events.map((e: any) => ({ t: e.t, label: human(e.event), kind: "event" as const, grade: 0 })),
    ...alarms.map((a) => ({ t: a.alarm.t, label: `${human(a.alarm.kind)}: ${a.alarm.detail}`, kind: "alarm" as const, grade: a.alarm.grade })),
  ].sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
  const nearest = (time: string) => {
    const target = Date.parse(time);
    let best = 0;
    for (let i = 0; i < points.length; i++) {
      if (Date.parse(points[i].properties.t) <= target) best = i;
      else break;
    }
    return best;
  };
  const timeline = h(
    "ol",
    { class: "timeline", id: "timeline" },
    items.map((i) =>
      h(
        "li",
        { class: i.kind },
        h(
          "button",
          {
            class: "link",
            onclick: () => {
              slider.value = String(nearest(i.t));
              update();
            },
          },
          h("time", null, when(i.t)),
        ),
        " ",
        i.kind === "alarm" ? gradeBadge(i.grade) : null,
        " ",
        i.label,
      ),
    ),
  );
  // Seal state: every change of the lock or rope reported, and the seal events.
  const sealHistory: { t: string; what: string }[] = [];
  let last = "";
  for (const p of points) {
    const s = [p.properties.lock, p.properties.rope].filter(Boolean).join(", ");
    if (s && s !== last) {
      sealHistory.push({ t: p.properties.t, what: s });
      last = s;
    }
  }
  for (const e of events) {
    if (/seal|open|tamper|unlock/.test(e.event)) sealHistory.push({ t: e.t, what: human(e.event) });
  }
  for (const a of alarms) {
    if (["tamper", "illegal_opening", "unauthorized_action"].includes(a.alarm.kind))
      sealHistory.push({ t: a.alarm.t, what: `${human(a.alarm.kind)}: ${a.alarm.detail}` });
  }
  sealHistory.sort((a, b) => Date.parse(a.t) - Date.parse(b.t));

  // The decision: the proposal and why, then the officer's decision (going against the
  // proposal needs a reason), then what the inspection found.
  const decision = h("section", { class: "card", id: "decision" });
  const renderDecision = async () => {
    const highest = Math.max(0, ...alarms.map((a) => a.alarm.grade));
    const error = h("p", { class: "error", role: "alert", id: "decision-error" });
    const role = ctx.session.role;
    const summary = h(
      "p",
      { id: "alarm-summary" },
      alarms.length === 0
        ? "No alarm on this transit."
        : `${alarms.length} alarm${alarms.length === 1 ? "" : "s"}, highest grade ${highest}; ${alarmed.length} not resolved.`,
    );
    const act = async (action: string, b: HTMLButtonElement) => {
      b.disabled = true;
      error.textContent = "";
      try {
        const r = await api<any>(`/transits/${enc}/actions`, { method: "POST", body: { action } });
        error.className = "ok";
        error.textContent = `Done: ${human(action)}; the transit is now ${human(r.state ?? "")}.`;
      } catch (e) {
        error.className = "error";
        error.textContent = e instanceof ApiError ? e.message : String(e);
      } finally {
        b.disabled = false;
      }
    };
    const unseal: HTMLButtonElement = h("button", { id: "do-authorize-unseal", onclick: () => act("authorize_unseal", unseal) }, "Authorise unseal");
    const parts: (HTMLElement | string)[] = [h("h2", null, "Release or inspect"), summary];
    if (CAN.proposal(role)) {
      if (t.state === "arrived") {
        try {
          const p = await api<any>(`/transits/${enc}/proposal`);
          parts.push(proposalView(p.proposal, "Proposal"));
          if (CAN.decide(role)) parts.push(decideForm(p.proposal, error));
        } catch (e) {
          parts.push(h("p", { class: "error" }, `No proposal: ${(e as Error).message}`));
        }
      } else if (["released", "inspection", "unsealed", "closed"].includes(t.state)) {
        try {
          const d = await api<any>(`/transits/${enc}/decision`);
          parts.push(decidedView(d));
          if (d.decided === "inspect" && !d.inspection && CAN.decide(role)) parts.push(inspectionForm(error));
        } catch (e) {
          parts.push(
            h("p", { class: "muted" }, e instanceof ApiError && e.status === 404 ? "No release-or-inspect decision was recorded for this transit." : `Cannot load the decision: ${(e as Error).message}`),
          );
        }
      } else {
        parts.push(h("p", { class: "muted" }, "The proposal is made when the transit arrives."));
      }
    }
    if (CAN.act(role)) parts.push(h("div", { class: "actions" }, unseal));
    else if (!CAN.decide(role)) parts.push(h("p", { class: "muted" }, "Your role reads this transit; it cannot decide on it."));
    parts.push(error);
    replace(decision, ...parts);
  };

  /// The proposal's decision, score and every reason with its points, heaviest first.
  const proposalView = (p: any, title: string): HTMLElement =>
    h(
      "div",
      { id: "proposal" },
      h(
        "p",
        null,
        h("strong", null, `${title}: `),
        h("span", { class: `badge ${p.decision === "inspect" ? "g4" : "s-released"}`, id: "proposal-decision" }, human(p.decision)),
        ` — risk score `,
        h("strong", { id: "proposal-score" }, String(p.score)),
        ` of 100 (inspect at ${p.inspect_at})`,
        p.random ? h("span", { class: "muted" }, " · selected at random for control") : "",
      ),
      h(
        "ol",
        { class: "plain reasons", id: "risk-reasons", "aria-label": "Why" },
        (p.reasons ?? []).map((r: any) =>
          h("li", { "data-factor": r.factor }, h("span", { class: `points${r.points > 0 ? " hot" : ""}` }, `+${r.points}`), ` ${human(r.factor)}: ${r.detail}`),
        ),
      ),
    );

  const decideForm = (p: any, error: HTMLElement): HTMLElement => {
    const reason = h("input", {
      id: "decision-reason",
      "aria-label": "Reason",
      placeholder: "Reason (required to go against the proposal)",
    });
    const send = async (choice: "release" | "inspect", b: HTMLButtonElement) => {
      b.disabled = true;
      error.textContent = "";
      try {
        await api(`/transits/${enc}/decision`, { method: "POST", body: { decision: choice, reason: reason.value || undefined } });
        t.state = choice === "release" ? "released" : "inspection";
        await renderDecision();
        const done = decision.querySelector("#decision-error");
        if (done) {
          done.className = "ok";
          done.textContent = `Decided: ${human(choice)}.`;
        }
      } catch (e) {
        error.className = "error";
        error.textContent = e instanceof ApiError ? e.message : String(e);
        b.disabled = false;
      }
    };
    const release: HTMLButtonElement = h("button", { class: p.decision === "release" ? "primary" : "", id: "do-release", onclick: () => send("release", release) }, "Release without inspection");
    const inspect: HTMLButtonElement = h("button", { class: p.decision === "inspect" ? "primary" : "", id: "do-inspect", onclick: () => send("inspect", inspect) }, "Inspect");
    return h("div", { class: "actions" }, release, inspect, reason);
  };

  const decidedView = (d: any): HTMLElement =>
    h(
      "div",
      { id: "decided" },
      h(
        "p",
        null,
        h("strong", null, "Decided: "),
        h("span", { class: "badge", id: "decided-what" }, human(d.decided)),
        ` by ${d.actor} at ${when(d.at)}`,
        d.overridden ? h("span", { class: "error" }, ` — against the proposal (${human(d.proposed)}): ${d.reason ?? ""}`) : "",
      ),
      d.inspection
        ? h("p", { id: "inspection-result" }, `Inspection: ${d.inspection.found ? "found something" : "nothing found"}${d.inspection.note ? ` — ${d.inspection.note}` : ""}`)
        : "",
      proposalView(d.proposal, "The proposal shown then"),
    );

  const inspectionForm = (error: HTMLElement): HTMLElement => {
    const note = h("input", { id: "inspection-note", "aria-label": "What the inspection found", placeholder: "What the inspection found" });
    const send = async (found: boolean, b: HTMLButtonElement) => {
      b.disabled = true;
      try {
        await api(`/transits/${enc}/inspection`, { method: "POST", body: { found, note: note.value || undefined } });
        await renderDecision();
      } catch (e) {
        error.className = "error";
        error.textContent = e instanceof ApiError ? e.message : String(e);
        b.disabled = false;
      }
    };
    const found: HTMLButtonElement = h("button", { id: "inspection-found", onclick: () => send(true, found) }, "Found something");
    const nothing: HTMLButtonElement = h("button", { id: "inspection-nothing", onclick: () => send(false, nothing) }, "Nothing found");
    return h("div", { class: "actions" }, note, found, nothing);
  };
  await renderDecision();

  replace(
    ctx.main,
    h("p", null, h("a", { href: "/transits" }, "← Transits")),
    h("h1", null, `Transit ${id} `, h("span", { class: `badge s-${t.state}` }, human(t.state))),
    h(
      "div",
      { class: "two" },
      h(
        "div",
        null,
        mapHost,
        h("div", { class: "replay" }, play, slider, at, readout),
        h("h2", null, "Events and alarms"),
        items.length ? timeline : h("p", { class: "muted" }, "Nothing yet."),
      ),
      h(
        "div",
        null,
        h("section", { class: "card" }, h("h2", null, "Declaration"), declaration),
        decision,
        h(
          "section",
          { class: "card" },
          h("h2", null, "Alarms"),
          alarms.length
            ? h(
                "ul",
                { class: "plain", id: "transit-alarms" },
                alarms.map((a) =>
                  h("li", null, gradeBadge(a.alarm.grade), ` #${a.id} ${human(a.alarm.kind)} — ${human(stateOf(a))} `, h("small", { class: "muted" }, when(a.alarm.t))),
                ),
              )
            : h("p", { class: "muted" }, "None."),
        ),
        h(
          "section",
          { class: "card" },
          h("h2", null, "Seal state"),
          sealHistory.length
            ? h("ol", { class: "plain", id: "seal-history" }, sealHistory.map((s) => h("li", null, h("time", null, when(s.t)), " ", s.what)))
            : h("p", { class: "muted" }, "No report of the seal yet."),
        ),
        h(
          "button",
          {
            onclick: () =>
              downloadCsv(
                `track-${id}.csv`,
                ["t", "lon", "lat", "lock", "rope", "battery_pct", "speed_kmh"],
                points.map((p) => [p.properties.t, ...p.geometry.coordinates, p.properties.lock, p.properties.rope, p.properties.battery_pct, p.properties.speed_kmh]),
              ),
          },
          "Export the track (CSV)",
        ),
      ),
    ),
  );

  const view = new MapView(mapHost);
  const base: Overlay[] = [...zoneOverlays(myZones)];
  if (tr.route?.type === "LineString") {
    // The corridor, drawn wide and faint under the route line.
    base.push({ kind: "line", coordinates: tr.route.coordinates, color: "#1565c055", width: 14 });
    base.push({ kind: "line", coordinates: tr.route.coordinates, color: "#1565c0", width: 2, dash: [6, 4] });
  }
  const coords = points.map((p) => p.geometry.coordinates);
  const update = () => {
    const i = Number(slider.value);
    const overlays = [...base];
    if (coords.length) {
      overlays.push({ kind: "line", coordinates: coords, color: "#9e9e9e", width: 2 });
      overlays.push({ kind: "line", coordinates: coords.slice(0, i + 1), color: "#212121", width: 3 });
      for (const a of alarms)
        if (a.alarm.lon !== undefined && a.alarm.lat !== undefined)
          overlays.push({ kind: "point", coordinates: [a.alarm.lon, a.alarm.lat], color: COLORS.grade[a.alarm.grade], width: 6 });
      overlays.push({ kind: "point", coordinates: coords[i], color: "#000", width: 7 });
      const p = points[i].properties;
      at.textContent = when(p.t);
      readout.textContent = [p.lock, p.rope, p.speed_kmh !== undefined ? `${p.speed_kmh} km/h` : "", p.battery_pct !== undefined ? `battery ${p.battery_pct}%` : ""]
        .filter(Boolean)
        .join(" · ");
    }
    view.overlays = overlays;
    view.request();
  };
  slider.addEventListener("input", update);
  let playing: number | undefined;
  play.addEventListener("click", () => {
    if (playing !== undefined) {
      clearInterval(playing);
      playing = undefined;
      play.textContent = "▶ Play";
      return;
    }
    if (Number(slider.value) >= points.length - 1) slider.value = "0";
    play.textContent = "❚❚ Pause";
    playing = window.setInterval(() => {
      const next = Number(slider.value) + 1;
      if (next >= points.length) {
        clearInterval(playing);
        playing = undefined;
        play.textContent = "▶ Play";
        return;
      }
      slider.value = String(next);
      update();
    }, 60);
  });
  ctx.cleanup(() => playing !== undefined && clearInterval(playing));
  const atParam = ctx.params.get("at");
  if (atParam && points.length) slider.value = String(nearest(atParam));
  const all_ = [...coords, ...(tr.route?.type === "LineString" ? tr.route.coordinates : [])];
  if (all_.length) {
    const lons = all_.map((c: number[]) => c[0]);
    const lats = all_.map((c: number[]) => c[1]);
    view.fit([
      [Math.min(...lons) - 0.02, Math.min(...lats) - 0.02],
      [Math.max(...lons) + 0.02, Math.max(...lats) + 0.02],
    ], 14);
  }
  update();
}

export async function transitsPage(ctx: Ctx): Promise<void> {
  const status = h("p", { class: "muted" }, "Loading transits…");
  const q = h("input", { type: "search", id: "transit-search", "aria-label": "Search transits", placeholder: "Transit, plate, container, device, carrier" });
  const stateSel = h(
    "select",
    { id: "transit-state", "aria-label": "State" },
    h("option", { value: "" }, "every state"),
    ["declared", "sealed", "in_transit", "arrived", "released", "inspection", "unsealed", "closed"].map((s) => h("option", { value: s }, human(s))),
  );
  const body = h("tbody");
  const csv = h("button", { id: "transits-csv" }, "Export CSV");
  replace(
    ctx.main,
    h("h1", null, "Transits"),
    h("div", { class: "toolbar" }, q, h("label", null, "State ", stateSel), csv),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid", id: "transit-list" },
        h("thead", null, h("tr", null, ["Transit", "State", "Route", "Device", "Plate", "Containers", "Carrier", CAN.personal(ctx.session.role) ? "Driver" : null].filter((x) => x !== null).map((c) => h("th", { scope: "col" }, c)))),
        body,
      ),
    ),
  );
  let list: any[] = [];
  const shown = () => {
    const s = q.value.trim().toLowerCase();
    return list.filter((t) => {
      if (stateSel.value && t.state !== stateSel.value) return false;
      if (!s) return true;
      const tr = t.transit;
      return [tr.id, tr.device, tr.vehicle?.plate, tr.declaration?.carrier, ...(tr.vehicle?.containers ?? [])].some((v) => v?.toLowerCase().includes(s));
    });
  };
  const render = () => {
    const rows = shown();
    status.textContent = `${rows.length} of ${list.length} transits`;
    replace(
      body,
      rows.slice(0, 500).map((t) => {
        const tr = t.transit;
        return h(
          "tr",
          { "data-transit": tr.id },
          h("td", null, h("a", { href: `/transits/${encodeURIComponent(tr.id)}` }, tr.id)),
          h("td", null, human(t.state)),
          h("td", null, `${tr.departure ?? "?"} → ${tr.destination ?? "?"}`),
          h("td", null, tr.device),
          h("td", null, tr.vehicle?.plate ?? ""),
          h("td", null, (tr.vehicle?.containers ?? []).join(" ")),
          h("td", null, tr.declaration?.carrier ?? ""),
          CAN.personal(ctx.session.role) ? h("td", { class: "driver" }, tr.driver?.name ?? "") : null,
        );
      }),
    );
  };
  q.addEventListener("input", render);
  stateSel.addEventListener("change", render);
  // The API's export (`format=csv`, recorded in the audit chain), in the state chosen here.
  csv.addEventListener("click", () => {
    const p = new URLSearchParams({ format: "csv" });
    if (stateSel.value) p.set("state", stateSel.value);
    downloadFrom(`/api/v1/transits?${p}`, "transits.csv");
  });
  try {
    list = await all("/transits", 20000);
    render();
  } catch (e) {
    status.textContent = `Cannot load the transits: ${(e as Error).message}`;
    status.className = "error";
  }
}
