/**
 * Writes the results: `bench/results/<suite>.json` and `<suite>.svg` per suite, and from every
 * suite's JSON found in bench/results (so a run of one suite keeps the others' last results)
 * `latest.json` (all of them in one file) and `latest.md` (the targets at a glance, then a
 * table per workload).
 *
 * The SVG of a suite: a line chart per `charts` entry (median against scale, a whisker to p95;
 * the y axis turns logarithmic when the lines span more than 30×), and a bar chart per workload
 * for suites without line charts (or workloads marked for bars).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RESULTS_DIR, type Chart, type SuiteResult, type TargetResult, type ToolResult, type WorkloadResult } from './common';

/** The order suites appear in latest.md / latest.json. */
const ORDER = ['rtnetlink', 'nft', 'bridge', 'connect', 'cni', 'ports', 'dataplane', 'memory'];

/** JSON with two-space indents, but arrays of numbers on one line (the samples stay readable and small). */
function toJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/gu, (_, body: string) => `[${body.replace(/\s+/gu, ' ')}]`) + '\n';
}

export function writeSuite(r: SuiteResult): string[] {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, `${r.suite}.json`);
  const svg = path.join(RESULTS_DIR, `${r.suite}.svg`);
  fs.writeFileSync(json, toJson(r));
  fs.writeFileSync(svg, renderSvg(r));
  return [json, svg];
}

function readSuites(): SuiteResult[] {
  const suites: SuiteResult[] = [];
  for (const f of fs.readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json') && f !== 'latest.json')) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, f), 'utf8')) as SuiteResult;
      if (r && r.suite && Array.isArray(r.workloads)) suites.push(r);
    } catch {
      /* not a result file */
    }
  }
  const rank = (s: string): number => (ORDER.includes(s) ? ORDER.indexOf(s) : ORDER.length);
  return suites.sort((a, b) => rank(a.suite) - rank(b.suite) || a.suite.localeCompare(b.suite));
}

/** Re-renders every suite's SVG (and latest.*) from the JSON in bench/results: after a change of the report only. */
export function rerender(): string[] {
  const out: string[] = [];
  for (const r of readSuites()) out.push(...writeSuite(r));
  return [...out, ...writeLatest()];
}

/** Writes latest.md and latest.json from every suite result in bench/results; returns their paths. */
export function writeLatest(): string[] {
  const suites = readSuites();
  const md = path.join(RESULTS_DIR, 'latest.md');
  const json = path.join(RESULTS_DIR, 'latest.json');
  fs.writeFileSync(md, renderMarkdown(suites));
  fs.writeFileSync(
    json,
    toJson({
      generated: new Date().toISOString(),
      note: "Every suite's last result without the raw samples (those are in <suite>.json). Compare tools by ratio within one suite run only.",
      targets: suites.flatMap((s) => s.targets.map((t) => ({ suite: s.suite, ...t, status: status(t) }))),
      suites: Object.fromEntries(
        suites.map((s) => [s.suite, { ...s, workloads: s.workloads.map((w) => ({ ...w, tools: w.tools.map(({ samples_ms: _, ...t }) => t) })) }]),
      ),
    }),
  );
  return [md, json];
}

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–');
/** A value with sensible digits for its size. */
const num = (x: number): string =>
  !Number.isFinite(x) ? '–' : Number.isInteger(x) || Math.abs(x) >= 100 ? fmt(x, 0) : Math.abs(x) >= 10 ? fmt(x, 1) : fmt(x, 2);
const status = (t: TargetResult): 'met' | 'missed' | 'not measured' => t.status ?? (t.met ? 'met' : 'missed');
const statusText = (t: TargetResult): string => ({ met: '**met**', missed: '**NOT met**', 'not measured': '**not measured**' })[status(t)];

function renderMarkdown(suites: SuiteResult[]): string {
  const out: string[] = ['# nsnet benchmarks: latest results', ''];
  out.push(
    'Produced by `npm run bench` (one suite: `npm run bench -- SUITE`); bench/README.md says what is measured and how. ' +
      'Each suite ran on this machine at the time shown in its section; compare tools by ratio **within one suite run** only. ' +
      "Median and p95 of all samples; `spread` is the difference between the slowest and fastest repetition's median, relative to their median (the noise between repetitions); " +
      "`vs ref` is the tool's rate relative to the reference row (above 1.00 is faster/better); `nsnet vs each peer` says how many times faster (or better) nsnet is than each other row, by median.",
    '',
  );
  out.push('## Targets at a glance', '', '| suite | target | result | figures |', '|---|---|---|---|');
  for (const s of suites) for (const t of s.targets) out.push(`| ${s.suite} | ${t.text} | ${statusText(t)} | ${t.detail.replace(/\|/gu, '\\|')} |`);
  out.push('');
  for (const s of suites) {
    out.push(`## ${s.title} (\`${s.suite}\`)`, '');
    const m = s.machine;
    out.push(
      `Run ${String(m.date)} · ${String(m.kernel)} · node ${String(m.node)} · ${String(m.cpu_count)} CPUs (${String(m.cpu_model)}) · ` +
        `${String(m.iproute2)} · pyroute2 ${String(m.pyroute2)} · suite took ${fmt(s.duration_s)} s · ` +
        `load average ${String(m.loadavg_1m)} at the start, ${String(m.loadavg_1m_end ?? '?')} at the end · ` +
        `spawning /bin/true costs this harness ${fmt(Number(m.spawn_true_median_ms), 2)} ms (inside every "whole process" time)`,
      '',
    );
    if (s.targets.length) {
      out.push('### Targets', '');
      for (const t of s.targets) out.push(`- ${statusText(t)}: ${t.text}. ${t.detail}.`);
      out.push('');
    }
    for (const n of s.notes ?? []) out.push(n, '');
    for (const w of s.workloads) out.push(...table(w));
    out.push(`Chart: [${s.suite}.svg](${s.suite}.svg) · raw samples: [${s.suite}.json](${s.suite}.json)`, '');
  }
  return out.join('\n');
}

function table(w: WorkloadResult): string[] {
  const out: string[] = [`### ${w.title}`, '', `Reference: \`${w.reference}\`. ${w.note ?? ''}`, ''];
  const unit = w.value?.unit ?? 'ms';
  const slow = w.value?.higher_is_better ? 'p5' : 'p95';
  out.push(`| tool | what | timing | items | runs | median ${unit} | ${slow} ${unit} | spread | vs ref |`);
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const t of w.tools) {
    const name = t.tool === w.reference ? `${t.tool} (ref)` : t.nsnet ? `**${t.tool}**` : t.tool;
    const spread = t.repetitions ? `±${fmt((100 * t.repetitions.spread) / 2, 0)}% (${t.repetitions.medians.length})` : '–';
    out.push(
      `| ${name} | ${t.label.replace(/\|/gu, '\\|')} | ${t.timing} | ${t.items} | ${t.runs} | ${num(t.median_ms)} | ${num(t.p95_ms)} | ${spread} | ${fmt(t.ratio_vs_ref, 2)}× |`,
    );
  }
  out.push('');
  const vs = w.tools.filter((t) => t.vs_peers && Object.keys(t.vs_peers).length);
  if (vs.length) {
    out.push(
      `nsnet vs each peer (${w.value?.higher_is_better ? 'higher is better' : 'times faster'}, by median): ` +
        vs
          .map(
            (t) =>
              `**${t.tool}** ${Object.entries(t.vs_peers!)
                .map(([p, r]) => `${fmt(r, 2)}× ${p}`)
                .join(', ')}`,
          )
          .join(' · '),
      '',
    );
  }
  return out;
}

const esc = (s: string): string => s.replace(/&/gu, '&amp;').replace(/</gu, '&lt;').replace(/>/gu, '&gt;').replace(/"/gu, '&quot;');
const W = 960;
const TOOL_COLORS: Record<string, string> = { nsnet: '#2b6cb0', cni: '#dd6b20', netavark: '#2f855a' };
const OTHER_COLORS = ['#805ad5', '#b7791f', '#c53030', '#319795', '#718096'];

function renderSvg(r: SuiteResult): string {
  const parts: string[] = [];
  let y = 40;
  const title = `${r.title} (${r.suite})`;
  parts.push(`<text x="10" y="24" font-size="15" font-weight="bold">${esc(title.length > 115 ? `${title.slice(0, 112)}…` : title)}</text>`);
  for (const c of r.charts ?? []) {
    const p = lineChart(c, y);
    parts.push(...p.parts);
    y += p.height + 16;
  }
  for (const w of r.workloads) {
    if (!r.charts?.length || w.bars) {
      parts.push(...barPanel(w, y));
      y += 30 + w.tools.length * 24 + 16;
    }
  }
  const H = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    `<text x="10" y="${H - 8}" font-size="10" fill="#666">${esc(`${String(r.machine.date)} · ${String(r.machine.kernel)} · node ${String(r.machine.node)} · ${String(r.machine.cpu_count)} CPUs · load ${String(r.machine.loadavg_1m)} → ${String(r.machine.loadavg_1m_end ?? '?')}`)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** Ticks for a log axis: 1, 2, 5 × powers of ten inside [lo, hi] (only powers of ten when many). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of hi / lo > 1000 ? [1] : [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function linearTicks(lo: number, hi: number): number[] {
  const span = hi - lo || 1;
  const step0 = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

const tickText = (v: number): string => (v === 0 ? '0' : v >= 1000 ? `${fmt(v / 1000, v % 1000 ? 1 : 0)}k` : v >= 1 ? fmt(v, v % 1 ? 1 : 0) : fmt(v, 2));

/** A line chart: one line per series, points with a p95 whisker, value labels, a legend. */
function lineChart(c: Chart, top: number): { parts: string[]; height: number } {
  const height = 336;
  const left = 70;
  const right = W - 170;
  const plotTop = top + 30;
  const plotBottom = top + height - 40;
  const p: string[] = [];
  p.push(`<text x="10" y="${top + 16}" font-size="13" font-weight="bold">${esc(c.title)}</text>`);
  const pts = c.series.flatMap((s) => s.points);
  if (!pts.length) return { parts: p, height: 40 };
  const xs = pts.map((q) => q.x);
  const ys = pts.flatMap((q) => [q.y, q.p95 ?? q.y]).filter((v) => v > 0);
  const logX = !!c.log_x && Math.min(...xs) > 0;
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const logY = yMin > 0 && yMax / yMin > 30;
  const [x0, x1] = logX ? [Math.min(...xs) / 1.5, Math.max(...xs) * 1.5] : [Math.min(0, ...xs), Math.max(...xs) * 1.05 || 1];
  const [y0, y1] = logY ? [yMin / 1.5, yMax * 1.5] : [0, yMax * 1.1 || 1];
  const X = (v: number): number =>
    left + ((logX ? Math.log10(v) - Math.log10(x0) : v - x0) / (logX ? Math.log10(x1) - Math.log10(x0) : x1 - x0)) * (right - left);
  const Y = (v: number): number =>
    plotBottom - ((logY ? Math.log10(Math.max(v, y0)) - Math.log10(y0) : v - y0) / (logY ? Math.log10(y1) - Math.log10(y0) : y1 - y0)) * (plotBottom - plotTop);
  // axes and grid
  p.push(
    `<line x1="${left}" y1="${plotBottom}" x2="${right}" y2="${plotBottom}" stroke="#333"/><line x1="${left}" y1="${plotTop}" x2="${left}" y2="${plotBottom}" stroke="#333"/>`,
  );
  for (const t of logY ? logTicks(y0, y1) : linearTicks(y0, y1)) {
    p.push(`<line x1="${left}" x2="${right}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#e2e2e2"/>`);
    p.push(`<text x="${left - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" font-size="10">${tickText(t)}</text>`);
  }
  const xt = [...new Set(xs)].sort((a, b) => a - b);
  for (const t of xt) {
    p.push(`<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${plotBottom}" y2="${plotBottom + 4}" stroke="#333"/>`);
    p.push(`<text x="${X(t).toFixed(1)}" y="${plotBottom + 16}" text-anchor="middle" font-size="10">${tickText(t)}</text>`);
  }
  p.push(`<text x="${(left + right) / 2}" y="${plotBottom + 32}" text-anchor="middle" font-size="11">${esc(c.x_label)}${logX ? ' (log scale)' : ''}</text>`);
  p.push(
    `<text x="14" y="${(plotTop + plotBottom) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(plotTop + plotBottom) / 2})">${esc(c.y_label)}${logY ? ' (log scale)' : ''}</text>`,
  );
  // series
  let other = 0;
  c.series.forEach((s, i) => {
    const color = TOOL_COLORS[s.name] ?? (s.nsnet ? TOOL_COLORS.nsnet! : OTHER_COLORS[other++ % OTHER_COLORS.length]!);
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    if (!sorted.length) return;
    p.push(
      `<polyline fill="none" stroke="${color}" stroke-width="${s.nsnet ? 2.5 : 2}" points="${sorted.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const q of sorted) {
      const cx = X(q.x).toFixed(1);
      if (q.p95 !== undefined && q.p95 > q.y)
        p.push(`<line x1="${cx}" x2="${cx}" y1="${Y(q.y).toFixed(1)}" y2="${Y(q.p95).toFixed(1)}" stroke="${color}" stroke-width="1" stroke-dasharray="2,2"/>`);
      p.push(`<circle cx="${cx}" cy="${Y(q.y).toFixed(1)}" r="3.5" fill="${color}"/>`);
      // A label goes above its point, or below it when another line passes just above there.
      const crowded = c.series.some(
        (o, j) => j !== i && o.points.some((r) => r.x === q.x && r.y >= q.y && (j < i || r.y > q.y) && Math.abs(Y(r.y) - Y(q.y)) < 16),
      );
      p.push(`<text x="${(X(q.x) + 5).toFixed(1)}" y="${(Y(q.y) + (crowded ? 14 : -6)).toFixed(1)}" font-size="10" fill="${color}">${esc(num(q.y))}</text>`);
    }
    const ly = plotTop + 4 + i * 18;
    p.push(
      `<line x1="${right + 14}" x2="${right + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/><text x="${right + 40}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  if (c.note) p.push(`<text x="${left}" y="${top + height + 8}" font-size="10" fill="#666">${esc(c.note)}</text>`);
  return { parts: p, height };
}

/** A horizontal bar chart of the median per tool (whisker to p95), bars beyond 4× the reference cut. */
function barPanel(w: WorkloadResult, top: number): string[] {
  const labelW = 230;
  const valueW = 270;
  const barMax = W - labelW - valueW - 20;
  const rowH = 24;
  const unit = w.value?.unit ?? 'ms';
  const p: string[] = [];
  p.push(
    `<text x="10" y="${top + 16}" font-size="13" font-weight="bold">${esc(w.title)} (median ${esc(unit)}, ${w.value?.higher_is_better ? 'longer is better' : 'shorter is better'}; ref: ${esc(w.reference)})</text>`,
  );
  const ref = w.tools.find((t) => t.tool === w.reference);
  const longest = Math.max(...w.tools.map((t) => t.median_ms), 1e-9);
  const max = (ref && !w.value?.higher_is_better ? Math.min(longest, 4 * ref.median_ms) : longest) * 1.1;
  const x = (v: number): number => Math.min(barMax, (v / max) * barMax);
  w.tools.forEach((t: ToolResult, i) => {
    const ry = top + 26 + i * rowH;
    const len = Math.max(1, x(t.median_ms));
    const cut = t.median_ms > max;
    const color = t.nsnet ? TOOL_COLORS.nsnet! : t.tool === w.reference ? '#6b6b6b' : '#b0b0b0';
    p.push(`<text x="${labelW - 8}" y="${ry + 15}" text-anchor="end">${esc(t.tool)}</text>`);
    p.push(`<rect x="${labelW}" y="${ry + 3}" width="${len.toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
    let end = len;
    if (cut) {
      const bx = labelW + len - 14;
      p.push(`<path d="M${bx} ${ry + 1} l4 ${rowH - 4} M${bx + 5} ${ry + 1} l4 ${rowH - 4}" stroke="#fff" stroke-width="3"/>`);
    } else if (!w.value?.higher_is_better && t.p95_ms > t.median_ms) {
      const px = labelW + x(t.p95_ms);
      p.push(`<line x1="${(labelW + len).toFixed(1)}" x2="${px.toFixed(1)}" y1="${ry + rowH / 2}" y2="${ry + rowH / 2}" stroke="#000"/>`);
      p.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${ry + 6}" y2="${ry + rowH - 6}" stroke="#000" stroke-width="1.5"/>`);
      end = x(t.p95_ms);
    }
    p.push(
      `<text x="${(labelW + end + 6).toFixed(1)}" y="${ry + 15}">${esc(`${num(t.median_ms)} ${unit} · ${fmt(t.ratio_vs_ref, 2)}× ref${cut ? ' (bar cut)' : ''}`)}</text>`,
    );
  });
  return p;
}
