// The sealwatch web UI: sign-in, role-aware navigation and a client-side router. Every page
// uses the public API only (/api/v1), as any other client would.

import "./style.css";
import { api, ApiError, setCsrf, whenSignedOut, type Role, type Session } from "./api";
import { h, replace } from "./dom";
import { mapPage } from "./pages/map";
import { alarmsPage } from "./pages/alarms";
import { transitPage, transitsPage } from "./pages/transit";
import { declarePage } from "./pages/declare";
import { devicesPage, devicePage } from "./pages/devices";
import { patrolPage } from "./pages/patrol";
import { reportsPage } from "./pages/reports";
import { poolPage } from "./pages/pool";
import { Live } from "./live";

export interface Ctx {
  session: Session;
  main: HTMLElement;
  live: Live;
  /** Runs when the page is left (timers, streams). */
  cleanup: (f: () => void) => void;
  navigate: (path: string) => void;
  params: URLSearchParams;
}

const CUSTOMS: Role[] = ["administrator", "supervisor", "officer", "office_officer", "auditor"];
const TRADE: Role[] = ["carrier", "forwarder", "consignor"];

/** What each role may open: the permission matrix of docs/security.md, seen from the UI. */
export const CAN = {
  map: (r: Role) => [...CUSTOMS, ...TRADE].includes(r),
  alarms: (r: Role) => [...CUSTOMS, ...TRADE].includes(r),
  handleAlarms: (r: Role) => ["administrator", "supervisor", "officer"].includes(r),
  transits: (r: Role) => [...CUSTOMS, ...TRADE].includes(r),
  declare: (r: Role) => ["administrator", "supervisor", "officer", "office_officer"].includes(r),
  act: (r: Role) =>
    ["administrator", "supervisor", "officer", "office_officer", "site_operator"].includes(r),
  devices: (r: Role) =>
    ["administrator", "supervisor", "officer", "office_officer", "auditor", "site_operator"].includes(r),
  patrol: (r: Role) => r === "patrol",
  reports: (r: Role) => ["administrator", "supervisor", "officer", "auditor"].includes(r),
  // The release-or-inspect proposal is read by customs and the auditor, decided by officers.
  proposal: (r: Role) => ["administrator", "supervisor", "officer", "office_officer", "auditor"].includes(r),
  decide: (r: Role) => ["supervisor", "officer", "office_officer"].includes(r),
  pool: (r: Role) => ["administrator", "supervisor", "officer", "office_officer", "auditor"].includes(r),
  personal: (r: Role) =>
    ["administrator", "supervisor", "officer", "patrol", "office_officer", "auditor"].includes(r),
};

const NAV: { path: string; label: string; key: string; allowed: (r: Role) => boolean }[] = [
  { path: "/map", label: "Live map", key: "m", allowed: CAN.map },
  { path: "/alarms", label: "Alarms", key: "a", allowed: CAN.alarms },
  { path: "/transits", label: "Transits", key: "t", allowed: CAN.transits },
  { path: "/declare", label: "Declare and seal", key: "d", allowed: CAN.declare },
  { path: "/devices", label: "Devices and stations", key: "v", allowed: CAN.devices },
  { path: "/patrol", label: "My dispatches", key: "p", allowed: CAN.patrol },
  { path: "/pool", label: "Device pool", key: "o", allowed: CAN.pool },
  { path: "/reports", label: "Reports", key: "r", allowed: CAN.reports },
];

const ROLE_NAMES: Record<string, string> = {
  administrator: "Administrator",
  supervisor: "Supervisor",
  officer: "Centre officer",
  patrol: "Patrol",
  office_officer: "Office officer",
  site_operator: "Site operator",
  carrier: "Carrier",
  forwarder: "Forwarder",
  consignor: "Consignor",
  auditor: "Auditor",
  partner_customs: "Partner customs",
};

const app = document.getElementById("app")!;
let session: Session | null = null;
let live: Live | null = null;
let cleanups: (() => void)[] = [];

function home(role: Role): string {
  return NAV.find((n) => n.allowed(role))?.path ?? "/welcome";
}

function navigate(path: string): void {
  if (location.pathname + location.search !== path) history.pushState(null, "", path);
  route();
}

window.addEventListener("popstate", () => route());
whenSignedOut(() => {
  if (session) {
    session = null;
    live?.close();
    live = null;
    route();
  }
});

async function start(): Promise<void> {
  try {
    const who = await api<Session>("/session");
    session = who;
  } catch {
    session = null;
  }
  route();
}

function signInPage(): void {
  const error = h("p", { class: "error", role: "alert", id: "signin-error" });
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const code = h("input", { id: "totp", name: "totp", inputmode: "numeric", autocomplete: "one-time-code" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        button.textContent = "Signing in…";
        error.textContent = "";
        try {
          const body: Record<string, string> = { username: user.value, password: pass.value };
          if (code.value) body.totp = code.value;
          const s = await api<Session>("/session", { method: "POST", body });
          setCsrf(s.csrf_token);
          session = s;
          const wanted = new URLSearchParams(location.search).get("next");
          navigate(wanted && wanted.startsWith("/") ? wanted : home(s.role));
        } catch (err) {
          error.textContent =
            err instanceof ApiError ? `Sign-in refused: ${err.message}` : "Sign-in failed";
          button.disabled = false;
          button.textContent = "Sign in";
          pass.select();
        }
      },
    },
    h("h1", null, h("span", { class: "logo", "aria-hidden": "true" }, "◉"), " sealwatch"),
    h("p", { class: "muted" }, "Customs supervision of goods in transit"),
    h("label", { for: "username" }, "User name"),
    user,
    h("label", { for: "password" }, "Password"),
    pass,
    h("label", { for: "totp" }, "One-time code (administrators with a second factor)"),
    code,
    button,
    error,
  );
  replace(app, h("main", { class: "signin-wrap" }, form));
  user.focus();
}

function shell(s: Session): HTMLElement {
  const main = h("main", { id: "main", tabindex: "-1" });
  const links = NAV.filter((n) => n.allowed(s.role)).map((n) =>
    h(
      "a",
      {
        href: n.path,
        "data-nav": n.path,
        "aria-keyshortcuts": `Alt+${n.key.toUpperCase()}`,
        title: `${n.label} (Alt+${n.key.toUpperCase()})`,
        "aria-current": location.pathname.startsWith(n.path) ? "page" : false,
      },
      n.label,
    ),
  );
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h("a", { class: "brand", href: home(s.role) }, h("span", { class: "logo", "aria-hidden": "true" }, "◉"), " sealwatch"),
    h("nav", { "aria-label": "Main" }, links),
    h("span", { class: "live-dot", id: "live-state", title: "Live stream" }, ""),
    h(
      "span",
      { class: "who", id: "who" },
      `${s.username} · ${ROLE_NAMES[s.role] ?? s.role}${s.organisation ? ` · ${s.organisation}` : ""}`,
    ),
    h(
      "button",
      {
        class: "link",
        id: "signout",
        onclick: async () => {
          try {
            await api("/session", { method: "DELETE" });
          } catch {
            /* signed out either way */
          }
          setCsrf(undefined);
          session = null;
          live?.close();
          live = null;
          navigate("/");
        },
      },
      "Sign out",
    ),
  );
  replace(app, header, main);
  return main;
}

document.addEventListener("click", (e) => {
  const a = (e.target as Element).closest?.("a");
  if (!a || a.target || a.hasAttribute("download") || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("/api/")) return;
  e.preventDefault();
  navigate(href);
});

document.addEventListener("keydown", (e) => {
  if (!e.altKey || !session) return;
  const n = NAV.find((x) => x.key === e.key.toLowerCase() && x.allowed(session!.role));
  if (n) {
    e.preventDefault();
    navigate(n.path);
  }
});

function route(): void {
  cleanups.forEach((f) => f());
  cleanups = [];
  if (!session) {
    signInPage();
    return;
  }
  const s = session;
  if (!live) live = new Live(s.role !== "partner_customs" && s.role !== "site_operator");
  let path = location.pathname;
  if (path === "/" || path === "") {
    history.replaceState(null, "", home(s.role));
    path = home(s.role);
  }
  const main = shell(s);
  const ctx: Ctx = {
    session: s,
    main,
    live,
    cleanup: (f) => cleanups.push(f),
    navigate,
    params: new URLSearchParams(location.search),
  };
  const deny = () =>
    replace(
      main,
      h("h1", null, "Not available to your role"),
      h("p", null, `A ${ROLE_NAMES[s.role] ?? s.role} cannot open this page.`),
    );
  const guard = (allowed: boolean, page: () => unknown) => (allowed ? page() : deny());
  const m = path.match(/^\/(transits|devices)\/(.+)$/);
  if (path === "/map") guard(CAN.map(s.role), () => mapPage(ctx));
  else if (path === "/alarms") guard(CAN.alarms(s.role), () => alarmsPage(ctx));
  else if (path === "/transits") guard(CAN.transits(s.role), () => transitsPage(ctx));
  else if (m && m[1] === "transits")
    guard(CAN.transits(s.role) || CAN.patrol(s.role), () => transitPage(ctx, decodeURIComponent(m[2])));
  else if (path === "/declare") guard(CAN.declare(s.role), () => declarePage(ctx));
  else if (path === "/devices") guard(CAN.devices(s.role), () => devicesPage(ctx));
  else if (m && m[1] === "devices") guard(CAN.devices(s.role), () => devicePage(ctx, decodeURIComponent(m[2])));
  else if (path === "/patrol") guard(CAN.patrol(s.role), () => patrolPage(ctx));
  else if (path === "/pool") guard(CAN.pool(s.role), () => poolPage(ctx));
  else if (path === "/reports") guard(CAN.reports(s.role), () => reportsPage(ctx));
  else if (path === "/welcome")
    replace(
      main,
      h("h1", null, `Welcome, ${s.username}`),
      h(
        "p",
        null,
        s.role === "partner_customs"
          ? "Nothing is shared with partner administrations through this console yet: federation decides what is."
          : "Your role has no pages in this console.",
      ),
    );
  else replace(main, h("h1", null, "No such page"), h("p", null, h("a", { href: home(s.role) }, "Go to the start page")));
}

start();
