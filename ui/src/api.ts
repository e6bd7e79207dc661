// The UI talks to the public API only (/api/v1), with the session cookie and the CSRF token.

export interface Session {
  username: string;
  role: Role;
  organisation?: string | null;
  csrf_token?: string;
}

export type Role =
  | "administrator"
  | "supervisor"
  | "officer"
  | "patrol"
  | "office_officer"
  | "site_operator"
  | "carrier"
  | "forwarder"
  | "consignor"
  | "auditor"
  | "partner_customs"
  | "gateway";

/** A failed call: the API's problem `detail` (what was wrong, and with which field). */
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

const CSRF_KEY = "sealwatch.csrf";

export function setCsrf(token: string | undefined): void {
  if (token) localStorage.setItem(CSRF_KEY, token);
  else localStorage.removeItem(CSRF_KEY);
}

let onUnauthorized: () => void = () => {};
export function whenSignedOut(f: () => void): void {
  onUnauthorized = f;
}

export async function api<T = any>(
  path: string,
  init: { method?: string; body?: unknown; raw?: Blob | File; contentType?: string } = {},
): Promise<T> {
  const method = init.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (init.raw) {
    body = init.raw;
    headers["Content-Type"] = init.contentType ?? (init.raw.type || "application/octet-stream");
  } else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["Content-Type"] = "application/json";
  }
  if (method !== "GET") headers["X-CSRF-Token"] = localStorage.getItem(CSRF_KEY) ?? "";
  let r: Response;
  try {
    r = await fetch(`/api/v1${path}`, { method, headers, body, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "the service cannot be reached; check the connection");
  }
  if (r.status === 401 && path !== "/session") onUnauthorized();
  const text = await r.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!r.ok) {
    const detail = (data && (data.detail || data.title)) || r.statusText || "error";
    throw new ApiError(r.status, String(detail));
  }
  return data as T;
}

/** Every page of a list route (`items`, `next_after`), up to `max` items. */
export async function all<T = any>(path: string, max = 5000): Promise<T[]> {
  const out: T[] = [];
  let after: number | null = null;
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const page: { items: T[]; next_after: number | null } = await api(
      `${path}${sep}limit=1000${after !== null ? `&after=${after}` : ""}`,
    );
    out.push(...page.items);
    // Scoped lists may give short (even empty) pages before the last: the end is
    // `next_after` null, where the store stopped.
    if (page.next_after === null || page.next_after === after || out.length >= max) break;
    after = page.next_after;
  }
  return out;
}
