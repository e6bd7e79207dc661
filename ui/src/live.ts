// The live stream (GET /api/v1/stream, Server-Sent Events): one connection for the whole UI,
// resumed by the browser after a break (Last-Event-ID). Pages subscribe to what they show.

export type LiveKind = "event" | "alarm" | "alarm_update" | string;
type Listener = (kind: LiveKind, data: any) => void;

export class Live {
  private source: EventSource | null = null;
  private listeners = new Set<Listener>();
  /** Items received, for tests and the status dot. */
  received = 0;

  constructor(enabled: boolean) {
    if (!enabled) return;
    this.source = new EventSource("/api/v1/stream", { withCredentials: true });
    const dispatch = (kind: string) => (e: MessageEvent) => {
      this.received++;
      let data: any = null;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      this.listeners.forEach((f) => f(kind, data));
    };
    for (const kind of ["event", "alarm", "alarm_update"]) {
      this.source.addEventListener(kind, dispatch(kind) as EventListener);
    }
    this.source.onopen = () => this.status("live");
    this.source.onerror = () => this.status("reconnecting");
  }

  private status(s: "live" | "reconnecting"): void {
    const dot = document.getElementById("live-state");
    if (!dot) return;
    dot.className = `live-dot ${s}`;
    dot.textContent = s === "live" ? "live" : "reconnecting…";
  }

  subscribe(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  close(): void {
    this.source?.close();
    this.source = null;
    this.listeners.clear();
  }
}
