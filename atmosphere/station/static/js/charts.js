// Time-series charts on the vendored uPlot (static/vendor, MIT). A chart keeps its uPlot
// instance while its series stay the same and only swaps data, so live updates are cheap.
import { h, replace } from "./dom.js";

export const PALETTE = ["#7c8cff", "#38bdf8", "#34d399", "#fbbf24", "#f472b6", "#a78bfa", "#fb923c", "#2dd4bf", "#f87171", "#a3e635"];

export function colorFor(index) {
  return PALETTE[index % PALETTE.length];
}

function hhmm(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class TimeChart {
  constructor(el, { format = (v) => String(v), area = false, stacked = false, integer = false } = {}) {
    this.integer = integer;
    this.el = el;
    this.format = format;
    this.area = area;
    // Stacked bars: series i is drawn at the sum of series i..n, tallest first, so each
    // colour shows its own share of the bar.
    this.stacked = stacked;
    this.plot = null;
    this.signature = "";
    this.legend = null;
    new ResizeObserver(() => this.resize()).observe(el);
  }

  // names: series labels; data: [xs (ms), ys...]
  update(names, colors, data) {
    const hasData = data[0].length > 0 && data.slice(1).some((ys) => ys.some((v) => v !== null && v !== 0));
    const signature = `${names.join("|")}#${colors.join("|")}#${document.documentElement.dataset.theme}`;
    const ys = this.stacked ? stack(data.slice(1)) : data.slice(1);
    const seconds = [data[0].map((t) => t / 1000), ...ys];
    if (!this.plot || signature !== this.signature) {
      this.build(names, colors, seconds);
      this.signature = signature;
    } else {
      this.plot.setData(seconds);
    }
    this.emptyNote(!hasData);
  }

  build(names, colors, data) {
    if (this.plot) this.plot.destroy();
    replace(this.el);
    const axis = {
      stroke: cssVar("--muted"),
      grid: { stroke: cssVar("--line"), width: 1 },
      ticks: { show: false },
      font: "11px system-ui, sans-serif",
    };
    const bars = this.stacked && typeof uPlot.paths.bars === "function" ? uPlot.paths.bars({ size: [0.75, 14], gap: 1 }) : null;
    const opts = {
      width: Math.max(200, this.el.clientWidth),
      height: Math.max(120, this.el.clientHeight),
      padding: [10, 12, 0, 4],
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      legend: { show: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      axes: [
        { ...axis, space: 70, values: (u, splits) => splits.map(hhmm) },
        { ...axis, size: 56, values: (u, vals) => vals.map((v) => this.format(v)),
          incrs: this.integer ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6] : undefined },
      ],
      series: [
        {},
        ...names.map((name, i) => ({
          label: name,
          stroke: colors[i],
          width: this.stacked ? 0 : 2,
          fill: this.stacked ? colors[i] : this.area ? `${colors[i]}22` : undefined,
          paths: bars ?? undefined,
          // uPlot shows points only where data is sparse (a fresh system's first minutes).
          points: { size: 5, show: (u, si) => !this.stacked && sparse(u.data[si]) },
          spanGaps: false,
        })),
      ],
    };
    this.plot = new uPlot(opts, data, this.el);
  }

  emptyNote(show) {
    let note = this.el.querySelector(".empty-chart");
    if (show && !note) {
      note = h("div", { class: "empty-chart" }, "No activity in this window yet");
      this.el.appendChild(note);
    } else if (!show && note) note.remove();
  }

  resize() {
    if (this.plot && this.el.clientWidth > 0) {
      this.plot.setSize({ width: this.el.clientWidth, height: Math.max(120, this.el.clientHeight) });
    }
  }
}

// Few values (a fresh system, a quiet type): draw dots, or a lone minute would be invisible.
function sparse(ys) {
  let n = 0;
  for (const v of ys) if (v !== null && v !== undefined && ++n > 8) return false;
  return true;
}

function stack(series) {
  const out = series.map((ys) => ys.map((v) => v ?? 0));
  for (let i = out.length - 2; i >= 0; i--) out[i] = out[i].map((v, k) => v + out[i + 1][k]);
  return out;
}

export function legend(names, colors) {
  return h("div", { class: "legend" }, names.map((name, i) =>
    h("span", null, h("i", { class: "swatch", "data-color": colors[i] }), name)));
}

// Swatch colours are applied via the CSSOM (allowed by the CSP), not inline style attributes.
export function paintSwatches(root) {
  for (const el of root.querySelectorAll("i.swatch")) el.style.background = el.dataset.color;
}
