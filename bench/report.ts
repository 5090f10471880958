/**
 * Writes the results: `bench/results/<suite>.json`, a bar chart `<suite>.svg`, and
 * `latest.md`, a readable page made from every suite's JSON found in bench/results (so a run
 * of one suite keeps the others' last tables).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RESULTS_DIR, type SuiteResult, type WorkloadResult } from './common';

export function writeSuite(r: SuiteResult): string[] {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, `${r.suite}.json`);
  const svg = path.join(RESULTS_DIR, `${r.suite}.svg`);
  fs.writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  fs.writeFileSync(svg, renderSvg(r));
  return [json, svg];
}

export function writeLatest(): string {
  const suites: SuiteResult[] = [];
  for (const f of fs.readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')).sort()) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, f), 'utf8')) as SuiteResult;
      if (r && r.suite && Array.isArray(r.workloads)) suites.push(r);
    } catch {
      /* not a result file */
    }
  }
  const p = path.join(RESULTS_DIR, 'latest.md');
  fs.writeFileSync(p, renderMarkdown(suites));
  return p;
}

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–');

function renderMarkdown(suites: SuiteResult[]): string {
  const out: string[] = ['# nsnet benchmarks: latest results', ''];
  out.push('Produced by `npm run bench`; see bench/README.md for what is measured. Compare tools by ratio within one run only.');
  out.push('`vs ref` is the tool\'s rate divided by the reference peer\'s rate: above 1.00 is faster than the reference.', '');
  for (const s of suites) {
    out.push(`## ${s.title}`, '');
    const m = s.machine;
    out.push(
      `Run ${String(m.date)} · ${String(m.kernel)} · node ${String(m.node)} · ${String(m.cpu_count)} CPUs (${String(m.cpu_model)}) · ` +
        `${String(m.iproute2)} · pyroute2 ${String(m.pyroute2)} · suite took ${fmt(s.duration_s)} s · ` +
        `load average ${String(m.loadavg_1m)} at the start, ${String(m.loadavg_1m_end ?? '?')} at the end · ` +
        `spawning /bin/true costs this harness ${fmt(Number(m.spawn_true_median_ms), 2)} ms (inside every "whole process" time)`,
      '',
    );
    out.push('### Targets', '');
    for (const t of s.targets) out.push(`- ${t.met ? '**met**' : '**NOT met**'}: ${t.text}. ${t.detail}.`);
    out.push('');
    for (const w of s.workloads) {
      out.push(`### ${w.title}`, '');
      out.push(`Reference: \`${w.reference}\`. ${w.note ?? ''}`, '');
      out.push('| tool | what | timing | items | runs | median ms | p95 ms | rate /s | vs ref |');
      out.push('|---|---|---|---:|---:|---:|---:|---:|---:|');
      for (const t of w.tools) {
        const name = t.tool === w.reference ? `${t.tool} (ref)` : t.nsnet ? `**${t.tool}**` : t.tool;
        out.push(`| ${name} | ${t.label.replace(/\|/gu, '\\|')} | ${t.timing} | ${t.items} | ${t.runs} | ${fmt(t.median_ms)} | ${fmt(t.p95_ms)} | ${fmt(t.rate_per_s, 0)} | ${fmt(t.ratio_vs_ref, 2)}× |`);
      }
      out.push('');
    }
    out.push(`Chart: [${s.suite}.svg](${s.suite}.svg) · raw samples: [${s.suite}.json](${s.suite}.json)`, '');
  }
  return out.join('\n');
}

const esc = (s: string): string => s.replace(/&/gu, '&amp;').replace(/</gu, '&lt;').replace(/>/gu, '&gt;').replace(/"/gu, '&quot;');

/** A horizontal bar chart of median ms per tool, one panel (with its own scale) per workload. */
function renderSvg(r: SuiteResult): string {
  const W = 960;
  const labelW = 230;
  const valueW = 270;
  const barMax = W - labelW - valueW - 20;
  const rowH = 24;
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="10" y="24" font-size="16" font-weight="bold">${esc(r.title)}: median ms (shorter is better; whisker to p95)</text>`);
  for (const w of r.workloads) {
    parts.push(...panel(w, y));
    y += 30 + w.tools.length * rowH + 16;
  }
  const H = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    `<text x="10" y="${H - 8}" font-size="10" fill="#666">${esc(`${String(r.machine.date)} · ${String(r.machine.kernel)} · node ${String(r.machine.node)} · ${String(r.machine.cpu_count)} CPUs`)}</text>`,
    '</svg>',
    '',
  ].join('\n');

  function panel(w: WorkloadResult, top: number): string[] {
    const p: string[] = [];
    p.push(`<text x="10" y="${top + 16}" font-size="13" font-weight="bold">${esc(w.title)} (ref: ${esc(w.reference)})</text>`);
    // The axis ends at 4× the reference (or the longest bar, if shorter): longer bars are cut,
    // marked with a break, so that one very slow tool does not flatten the others.
    const ref = w.tools.find((t) => t.tool === w.reference);
    const longest = Math.max(...w.tools.map((t) => t.median_ms), 1e-9);
    const max = (ref ? Math.min(longest, 4 * ref.median_ms) : longest) * 1.1;
    const x = (ms: number): number => Math.min(barMax, (ms / max) * barMax);
    w.tools.forEach((t, i) => {
      const ry = top + 26 + i * rowH;
      const len = Math.max(1, x(t.median_ms));
      const cut = t.median_ms > max;
      const p95 = x(t.p95_ms);
      const color = t.nsnet ? '#2b6cb0' : t.tool === w.reference ? '#6b6b6b' : '#b0b0b0';
      p.push(`<text x="${labelW - 8}" y="${ry + 15}" text-anchor="end">${esc(`${t.tool} (${t.items})`)}</text>`);
      p.push(`<rect x="${labelW}" y="${ry + 3}" width="${len.toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
      if (cut) {
        const bx = labelW + len - 14;
        p.push(`<path d="M${bx} ${ry + 1} l4 ${rowH - 4} M${bx + 5} ${ry + 1} l4 ${rowH - 4}" stroke="#fff" stroke-width="3"/>`);
      } else if (t.p95_ms > t.median_ms) {
        const px = (labelW + p95).toFixed(1);
        p.push(`<line x1="${(labelW + len).toFixed(1)}" x2="${px}" y1="${ry + rowH / 2}" y2="${ry + rowH / 2}" stroke="#000" stroke-width="1"/>`);
        p.push(`<line x1="${px}" x2="${px}" y1="${ry + 6}" y2="${ry + rowH - 6}" stroke="#000" stroke-width="1.5"/>`);
      }
      const tx = labelW + Math.max(len, cut ? len : p95) + 6;
      p.push(`<text x="${tx.toFixed(1)}" y="${ry + 15}">${esc(`${fmt(t.median_ms)} ms · ${fmt(t.ratio_vs_ref, 2)}× ref${cut ? ' (bar cut)' : ''}`)}</text>`);
    });
    return p;
  }
}
