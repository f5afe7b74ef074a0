/**
 * A bar chart as hand-written SVG (no chart library): one panel per figure, one horizontal bar per
 * library at its median across rounds, a whisker for the min–max spread, the value printed at the end.
 *
 *   panels: [{ title, unit, better: 'lower' | 'higher', format(v), note?, rows: [{ label, group, median, min, max }] }]
 */

const COLORS = { library: '#d9480f', peer: '#3b5bdb', baseline: '#868e96' };
const WIDTH = 960;
const LABEL_W = 210;
const VALUE_W = 110;
const BAR_H = 16;
const ROW_H = 22;
const PANEL_HEAD = 44;
const PANEL_GAP = 18;

/** An axis from 0 to a round number at or above `max`, in 3 to 6 steps of 1, 2, 2.5 or 5 × 10^k. */
function niceAxis(max) {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return { top: Math.ceil(max / step) * step, step };
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function barChart({ title, subtitle, panels }) {
  const out = [];
  let y = 58;
  const plotW = WIDTH - LABEL_W - VALUE_W - 20;
  for (const panel of panels) {
    const rows = panel.rows.filter((r) => r.median !== undefined && Number.isFinite(r.median));
    const { top, step } = niceAxis(Math.max(...rows.map((r) => r.max ?? r.median), 0));
    const scale = (v) => (Math.max(0, v) / top) * plotW;
    out.push(`<text x="20" y="${y + 16}" class="panel">${esc(panel.title)}</text>`);
    out.push(`<text x="20" y="${y + 32}" class="note">${esc(`${panel.better === 'lower' ? 'lower is better' : 'higher is better'}${panel.note ? ` · ${panel.note}` : ''}`)}</text>`);
    let ry = y + PANEL_HEAD;
    for (let v = 0; v <= top + step / 2; v += step) {
      const gx = LABEL_W + scale(v);
      out.push(`<line x1="${gx.toFixed(1)}" y1="${ry - 4}" x2="${gx.toFixed(1)}" y2="${ry + rows.length * ROW_H - 2}" class="grid"/>`);
      out.push(`<text x="${gx.toFixed(1)}" y="${ry + rows.length * ROW_H + 10}" class="tick">${esc((panel.tick ?? panel.format)(v))}</text>`);
    }
    for (const row of rows) {
      const w = scale(row.median);
      const cy = ry + BAR_H / 2;
      out.push(`<text x="${LABEL_W - 8}" y="${cy + 4}" class="label${row.group === 'library' ? ' lib' : ''}">${esc(row.label)}</text>`);
      out.push(`<rect x="${LABEL_W}" y="${ry}" width="${Math.max(w, 0.5).toFixed(1)}" height="${BAR_H}" fill="${COLORS[row.group] ?? COLORS.peer}"${row.group === 'baseline' ? ' fill-opacity="0.55"' : ''}/>`);
      if (row.min !== undefined && row.max !== undefined && row.max > row.min) {
        const x1 = LABEL_W + scale(row.min);
        const x2 = LABEL_W + scale(row.max);
        out.push(`<path d="M${x1.toFixed(1)} ${cy}H${x2.toFixed(1)}M${x1.toFixed(1)} ${cy - 4}V${cy + 4}M${x2.toFixed(1)} ${cy - 4}V${cy + 4}" class="whisker"/>`);
      }
      const vx = LABEL_W + Math.max(w, row.max !== undefined ? scale(row.max) : 0) + 6;
      out.push(`<text x="${vx.toFixed(1)}" y="${cy + 4}" class="value">${esc(panel.format(row.median))}</text>`);
      ry += ROW_H;
    }
    y = ry + 14 + PANEL_GAP;
  }
  const legendY = y;
  const legend = [
    ['library', 'process-sandbox'],
    ['peer', 'peer library'],
    ['baseline', 'baseline (raw IPC, raw socket, in-process)'],
  ];
  let lx = 20;
  for (const [group, text] of legend) {
    out.push(`<rect x="${lx}" y="${legendY}" width="12" height="12" fill="${COLORS[group]}"${group === 'baseline' ? ' fill-opacity="0.55"' : ''}/>`);
    out.push(`<text x="${lx + 18}" y="${legendY + 10}" class="note">${esc(text)}</text>`);
    lx += 24 + text.length * 6.6;
  }
  out.push(`<text x="${lx + 10}" y="${legendY + 10}" class="note">bars: median of the rounds; whiskers: min–max</text>`);
  const height = legendY + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 18px; font-weight: bold; fill: #212529; }
  .sub { font-size: 12px; fill: #495057; }
  .panel { font-size: 14px; font-weight: bold; fill: #212529; }
  .note { font-size: 11px; fill: #495057; }
  .label { font-size: 12px; fill: #343a40; text-anchor: end; }
  .label.lib { font-weight: bold; fill: #d9480f; }
  .value { font-size: 11px; fill: #212529; }
  .tick { font-size: 10px; fill: #868e96; text-anchor: middle; }
  .grid { stroke: #e9ecef; stroke-width: 1; }
  .whisker { stroke: #212529; stroke-width: 1.2; fill: none; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="26" class="title">${esc(title)}</text>
<text x="20" y="44" class="sub">${esc(subtitle)}</text>
${out.join('\n')}
</svg>
`;
}
