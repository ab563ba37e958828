/** Progress lines with an ETA on stderr: redrawn in place on a TTY, a line every few seconds otherwise. */
import type { CliIO } from "./args.js";

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class ProgressLine {
  private last = 0;
  private drawn = false;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly io: CliIO, private readonly label: string, private readonly everyMs = 3000) {}

  update(done: number, total: number, detail: string): void {
    const now = performance.now();
    const final = done >= total;
    if (!this.tty && !final && now - this.last < this.everyMs) return;
    this.last = now;
    const pct = total > 0 ? (100 * done) / total : 100;
    const width = 24;
    const fill = Math.round((width * pct) / 100);
    const line = `${this.label} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${done}/${total} ${pct.toFixed(1)}% · ${detail}`;
    if (this.tty) {
      this.io.err(`\r\x1b[K${line}`);
      this.drawn = true;
    } else this.io.err(line + "\n");
  }

  done(): void {
    if (this.tty && this.drawn) this.io.err("\n");
  }
}
