import type { BenchResult } from './run.js';

/**
 * The container/host ratio per metric as an SVG bar chart, with the spread of the repetitions as error bars and
 * a rule at 1.0, drawn by Vega-Lite (loaded only here: it is the heaviest thing poc carries).
 */
const METRIC = { field: 'metric', type: 'nominal', sort: null, title: null } as const;

export async function ratioChart(result: BenchResult): Promise<string> {
  const vega = await import('vega');
  const { compile } = await import('vega-lite');
  const values = result.tests.flatMap((t) =>
    t.metrics.map((m) => ({
      metric: `${t.name}: ${m.label}`,
      ratio: m.comparison.ratio,
      lo: m.comparison.spread[0],
      hi: m.comparison.spread[1],
    })),
  );
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'container / host (1.0 = same as the host)', subtitle: `${result.reps} repetitions; bars: median ratio, lines: spread` },
    width: 520,
    height: { step: 22 },
    data: { values },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' }, encoding: { y: METRIC, x: { field: 'ratio', type: 'quantitative', title: 'ratio', scale: { zero: true } } } },
      { mark: { type: 'rule', color: '#222' }, encoding: { y: METRIC, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } } },
      // The line of equality: a vertical rule over the whole height (no y encoding).
      { mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] }, data: { values: [{ one: 1 }] }, encoding: { x: { field: 'one', type: 'quantitative' } } },
    ],
  } as Parameters<typeof compile>[0]).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Error });
  return view.toSVG();
}
