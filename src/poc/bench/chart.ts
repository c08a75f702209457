import type { BenchResult } from './run.js';

/**
 * The container/host ratio per metric as an SVG bar chart, with the spread of the repetitions as error bars and
 * a rule at 1.0, drawn by Vega-Lite (loaded only here: it is the heaviest thing poc carries).
 */
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
    encoding: { y: { field: 'metric', type: 'nominal', sort: null, title: null } },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' }, encoding: { x: { field: 'ratio', type: 'quantitative', title: 'ratio', scale: { zero: false, padding: 10 } } } },
      { mark: { type: 'rule', color: '#222' }, encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } } },
      { mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] }, data: { values: [{ one: 1 }] }, encoding: { x: { field: 'one', type: 'quantitative' }, y: {} } },
    ],
  } as Parameters<typeof compile>[0]).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  return view.toSVG();
}
