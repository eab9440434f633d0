// A hand-drawn SVG chart: per-minute bars (completed, failed stacked) and a line for mean latency.
// No library and no network: the page must work offline and stay small.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 180;
const PAD = { left: 40, right: 48, top: 12, bottom: 24 };

function node(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * Draws `buckets` ([{ label, completed, failed, latencyMs }], oldest first) into `container`.
 * Bars count tasks that ended in the minute; the line is their mean end-to-end latency.
 */
export function drawThroughputChart(container, buckets) {
  const maxCount = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
  const latencies = buckets.map((b) => b.latencyMs).filter((v) => v !== undefined);
  const maxLatency = Math.max(1, ...latencies);
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const step = innerW / buckets.length;
  const y = (count) => PAD.top + innerH - (count / maxCount) * innerH;
  const yLatency = (ms) => PAD.top + innerH - (ms / maxLatency) * innerH;

  const svg = node("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-labelledby": "chart-title",
  });
  svg.append(node("title", { id: "chart-title" }, "Tasks ended per minute (bars) and mean latency (line)"));
  svg.append(node("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0) }));
  svg.append(node("text", { x: 4, y: PAD.top + 10 }, String(maxCount)));
  svg.append(node("text", { x: 4, y: y(0) }, "0"));
  svg.append(node("text", { x: WIDTH - PAD.right + 4, y: PAD.top + 10 }, formatMs(maxLatency)));
  buckets.forEach((bucket, index) => {
    const x = PAD.left + index * step + step * 0.15;
    const w = step * 0.7;
    if (bucket.completed > 0) {
      svg.append(
        node("rect", {
          class: "bar",
          x,
          width: w,
          y: y(bucket.completed),
          height: y(0) - y(bucket.completed),
        }),
      );
    }
    if (bucket.failed > 0) {
      const top = y(bucket.completed + bucket.failed);
      svg.append(
        node("rect", { class: "bar failed", x, width: w, y: top, height: y(bucket.completed) - top }),
      );
    }
    if (index % 2 === buckets.length % 2 || index === buckets.length - 1) {
      svg.append(node("text", { x: x + w / 2, y: HEIGHT - 6, "text-anchor": "middle" }, bucket.label));
    }
  });
  const points = buckets
    .map((bucket, index) =>
      bucket.latencyMs === undefined
        ? undefined
        : `${PAD.left + index * step + step / 2},${yLatency(bucket.latencyMs).toFixed(1)}`,
    )
    .filter((point) => point !== undefined);
  if (points.length > 1) svg.append(node("polyline", { class: "latency", points: points.join(" ") }));
  if (points.length === 1) {
    const [cx, cy] = points[0].split(",");
    svg.append(node("circle", { class: "latency", cx, cy, r: 3 }));
  }
  container.replaceChildren(svg);
}

export function formatMs(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
