// A small element builder: the UI is plain TypeScript and the DOM, no framework.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

/** Makes an element: `on*` attributes are listeners, `class`, `style` and the rest attributes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === "value" && "value" in el) {
      (el as HTMLInputElement).value = String(v);
    } else if (k === "checked" && "checked" in el) {
      (el as HTMLInputElement).checked = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.textContent = "";
  append(el, children);
}

/** A time for people: `2026-11-30 13:05:29` (UTC). */
export function when(t: string | undefined | null): string {
  if (!t) return "";
  return t.replace("T", " ").replace(/\.\d+Z$/, "Z").replace("Z", "");
}

/** How long ago, short: `4 min`, `2 h`. */
export function age(t: string, now = Date.now()): string {
  const s = Math.max(0, (now - Date.parse(t)) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** Downloads rows as a CSV file (RFC 4180 quoting). */
export function downloadCsv(name: string, header: string[], rows: unknown[][]): void {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    // A cell that a spreadsheet would read as a formula is quoted as text.
    const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const text = [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  const a = h("a", {
    href: URL.createObjectURL(new Blob([text], { type: "text/csv" })),
    download: name,
  });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** Downloads a file the API makes (a CSV export: the API records it in the audit chain). */
export function downloadFrom(url: string, name: string): void {
  const a = h("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
}
