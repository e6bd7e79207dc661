// The alarm console: the queue ordered by grade and age, filtered by kind, area and state;
// acknowledge, dispatch to a patrol, resolve with an outcome; a cue for new grade-4 alarms.

import { all, api, ApiError } from "../api";
import { age, downloadFrom, h, replace, when } from "../dom";
import { CAN, type Ctx } from "../main";
import { COLORS } from "../map";
import type { MapItem } from "./map";

export interface AlarmRecord {
  id: number;
  alarm: {
    transit: string;
    device: string;
    kind: string;
    t: string;
    lat?: number;
    lon?: number;
    grade: number;
    detail: string;
  };
  state: { state: string; outcome?: string } | string;
  history: { at: string; actor: string; step: string; outcome?: string; note?: string }[];
}

export const KINDS = [
  "route_deviation",
  "illegal_stay",
  "overtime_stay",
  "illegal_opening",
  "journey_timeout",
  "communication_loss",
  "low_battery",
  "tamper",
  "unauthorized_action",
  "device_fault",
  "environment",
  "abnormal_fuel",
  "suspected_jamming",
  "cloned_device",
  "checkpoint_mismatch",
];
export const OUTCOMES = ["confirmed_violation", "false_alarm", "technical_fault", "authorised"];

export function stateOf(a: AlarmRecord): string {
  return typeof a.state === "string" ? a.state : a.state.state;
}

export function human(s: string): string {
  return s.replace(/_/g, " ");
}

export function gradeBadge(grade: number): HTMLElement {
  return h(
    "span",
    { class: `grade g${grade}`, style: `background:${COLORS.grade[grade] ?? COLORS.grade[4]}`, title: `grade ${grade}` },
    `G${grade}`,
  );
}

/** Orders the queue: highest grade first, then the oldest (it has waited longest). */
export function byGradeAndAge(a: AlarmRecord, b: AlarmRecord): number {
  return b.alarm.grade - a.alarm.grade || Date.parse(a.alarm.t) - Date.parse(b.alarm.t);
}

/** The handling controls of one alarm, for who may handle it. */
export function actions(
  ctx: Ctx,
  a: AlarmRecord,
  done: () => void,
  opts: { patrol?: boolean } = {},
): HTMLElement {
  const state = stateOf(a);
  const box = h("div", { class: "actions" });
  const error = h("p", { class: "error", role: "alert" });
  const step = async (name: string, body: Record<string, unknown>, button: HTMLButtonElement) => {
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "…";
    error.textContent = "";
    try {
      // Dispatching or resolving an open alarm acknowledges it first (the lifecycle wants
      // it acknowledged), so that one click does what the officer means.
      if (state === "open" && name !== "acknowledge") {
        await api(`/alarms/${a.id}/acknowledge`, { method: "POST", body: { actor: ctx.session.username } });
      }
      await api(`/alarms/${a.id}/${name}`, {
        method: "POST",
        body: { actor: ctx.session.username, ...body },
      });
      done();
    } catch (e) {
      error.textContent = e instanceof ApiError ? e.message : String(e);
      button.disabled = false;
      button.textContent = label;
    }
  };
  const resolved = state === "resolved" || state === "closed";
  if (!opts.patrol && state === "open") {
    const b: HTMLButtonElement = h("button", { class: "ack", onclick: () => step("acknowledge", {}, b) }, "Acknowledge");
    box.append(b);
  }
  if (!opts.patrol && !resolved) {
    const to = h("input", {
      class: "dispatch-to",
      "aria-label": "Patrol to dispatch to",
      list: "patrols",
      value: "PATROL-1",
      size: 9,
    });
    const b: HTMLButtonElement = h(
      "button",
      { class: "dispatch", onclick: () => step("dispatch", { to: to.value }, b) },
      "Dispatch",
    );
    box.append(h("span", { class: "group" }, to, b));
  }
  if (!resolved) {
    const outcome = h(
      "select",
      { class: "outcome", "aria-label": "Outcome" },
      OUTCOMES.map((o) => h("option", { value: o }, human(o))),
    );
    const note = h("input", { class: "note", "aria-label": "Comments", placeholder: "Comments" });
    const b: HTMLButtonElement = h(
      "button",
      {
        class: "resolve",
        onclick: () => step("resolve", { outcome: outcome.value, note: note.value || undefined }, b),
      },
      "Resolve",
    );
    box.append(h("span", { class: "group" }, outcome, note, b));
  } else if (!opts.patrol && state === "resolved") {
    const b: HTMLButtonElement = h("button", { class: "close", onclick: () => step("close", {}, b) }, "Close");
    box.append(b);
  }
  box.append(error);
  return box;
}

export async function alarmsPage(ctx: Ctx): Promise<void> {
  const started = performance.now();
  const canHandle = CAN.handleAlarms(ctx.session.role);
  const kind = h(
    "select",
    { id: "filter-kind", "aria-label": "Kind" },
    h("option", { value: "" }, "every kind"),
    KINDS.map((k) => h("option", { value: k }, human(k))),
  );
  const stateSel = h(
    "select",
    { id: "filter-state", "aria-label": "State" },
    h("option", { value: "unresolved" }, "unresolved"),
    ["open", "acknowledged", "dispatched", "resolved", "closed"].map((s) => h("option", { value: s }, s)),
    h("option", { value: "" }, "every state"),
  );
  const area = h("select", { id: "filter-area", "aria-label": "Area" }, h("option", { value: "" }, "every area"));
  const cue = h("div", { class: "cue", id: "grade4-cue", role: "alert", hidden: true });
  const status = h("p", { class: "muted", id: "alarm-status" }, "Loading alarms…");
  const body = h("tbody");
  const table = h(
    "table",
    { class: "grid", id: "alarm-queue" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["", "Alarm", "Kind", "Transit", "Route", "Raised", "Waiting", "State", canHandle ? "Handle" : ""].map((c) =>
          h("th", { scope: "col" }, c),
        ),
      ),
    ),
    body,
  );
  const exportButton = h("button", { id: "alarms-csv" }, "Export CSV");
  replace(
    ctx.main,
    h("h1", null, "Alarm console"),
    cue,
    h(
      "div",
      { class: "toolbar" },
      h("label", null, "Kind ", kind),
      h("label", null, "Area ", area),
      h("label", null, "State ", stateSel),
      exportButton,
    ),
    h("datalist", { id: "patrols" }, h("option", { value: "PATROL-1" }), h("option", { value: "patrol" })),
    status,
    h("div", { class: "table-wrap" }, table),
  );
  let alarms: AlarmRecord[] = [];
  let routes = new Map<string, string>();
  let seen = new Set<number>();
  let firstLoad = true;

  const visible = () =>
    alarms
      .filter((a) => !kind.value || a.alarm.kind === kind.value)
      .filter((a) => {
        const s = stateOf(a);
        return stateSel.value === "unresolved"
          ? ["open", "acknowledged", "dispatched"].includes(s)
          : !stateSel.value || s === stateSel.value;
      })
      .filter((a) => !area.value || (routes.get(a.alarm.transit) ?? "").includes(area.value))
      .sort(byGradeAndAge);

  const render = () => {
    const rows = visible();
    const now = Date.now();
    replace(
      body,
      rows.map((a) =>
        h(
          "tr",
          { "data-alarm": a.id, "data-grade": a.alarm.grade, class: seen.has(a.id) ? "" : "new" },
          h("td", null, gradeBadge(a.alarm.grade)),
          h("td", null, `#${a.id}`),
          h("td", null, human(a.alarm.kind), h("div", { class: "detail" }, a.alarm.detail)),
          h(
            "td",
            null,
            h(
              "a",
              { href: `/transits/${encodeURIComponent(a.alarm.transit)}?at=${encodeURIComponent(a.alarm.t)}&alarm=${a.id}` },
              a.alarm.transit,
            ),
          ),
          h("td", null, routes.get(a.alarm.transit) ?? "—"),
          h("td", null, when(a.alarm.t)),
          h("td", null, age(a.alarm.t, now)),
          h("td", { class: `state s-${stateOf(a)}` }, human(stateOf(a))),
          canHandle ? h("td", null, actions(ctx, a, load)) : h("td"),
        ),
      ),
    );
    status.textContent = `${rows.length} alarm${rows.length === 1 ? "" : "s"} shown of ${alarms.length}`;
  };
  [kind, stateSel, area].forEach((s) => s.addEventListener("change", render));
  // The export is the API's (`format=csv`, recorded in the audit chain), with the kind and
  // state chosen here; the area is a view of this page only.
  exportButton.addEventListener("click", () => {
    const q = new URLSearchParams({ format: "csv" });
    if (kind.value) q.set("kind", kind.value);
    if (stateSel.value && stateSel.value !== "unresolved") q.set("state", stateSel.value);
    downloadFrom(`/api/v1/alarms?${q}`, "alarms.csv");
  });

  const load = async () => {
    try {
      const [list, map] = await Promise.all([
        all<AlarmRecord>("/alarms", 20000),
        api<{ items: MapItem[] }>("/map").catch(() => ({ items: [] as MapItem[] })),
      ]);
      routes = new Map(
        map.items.map((m) => [m.id, `${zoneName(m.departure)} → ${zoneName(m.destination)}`]),
      );
      const areas = [...new Set(map.items.flatMap((m) => [zoneName(m.departure), zoneName(m.destination)]))]
        .filter((x) => x && x !== "?")
        .sort();
      if (area.options.length !== areas.length + 1) {
        const chosen = area.value;
        replace(area, h("option", { value: "" }, "every area"), areas.map((x) => h("option", { value: x }, x)));
        area.value = chosen;
      }
      alarms = list;
      if (firstLoad) {
        seen = new Set(list.map((a) => a.id));
        firstLoad = false;
      }
      render();
      // Rows shown once are no longer new.
      setTimeout(() => list.forEach((a) => seen.add(a.id)), 4000);
    } catch (e) {
      status.textContent = `Cannot load the alarms: ${(e as Error).message}`;
      status.className = "error";
    }
  };
  await load();
  table.setAttribute("data-loaded-ms", String(Math.round(performance.now() - started)));
  let timer: number | undefined;
  const unsub = ctx.live.subscribe((k, data) => {
    if (k === "alarm" && data?.grade >= 4) {
      cue.hidden = false;
      replace(
        cue,
        h("strong", null, "New grade-4 alarm: "),
        `${human(data.kind)} on `,
        h("a", { href: `/transits/${encodeURIComponent(data.transit)}?at=${encodeURIComponent(data.t)}` }, data.transit),
        " ",
        h("button", { class: "link", onclick: () => (cue.hidden = true) }, "Dismiss"),
      );
      document.title = "(!) sealwatch";
    }
    if (k === "alarm" || k === "alarm_update") {
      if (timer === undefined)
        timer = window.setTimeout(() => {
          timer = undefined;
          load();
        }, 300);
    }
  });
  ctx.cleanup(() => {
    unsub();
    document.title = "sealwatch";
  });
}

export function zoneName(z: string | undefined): string {
  if (!z) return "?";
  return z.replace(/^e\d+\./, "");
}
