import { useEffect, useRef } from 'preact/hooks';
import { loadECharts, PALETTE, type ChartOption } from '../lib/chart-types';
import { downloadCsv } from '../lib/csv';

interface ChartProps {
  option: ChartOption;
  /** A summary of what the chart shows, for people who cannot see it. */
  label: string;
  testid: string;
  height?: number;
}

/**
 * An ECharts chart. The container is `role="img"` with `aria-label`; `data-rendered="true"` is set once
 * ECharts reports `finished` for the current option (the benchmark waits for it).
 */
export function Chart({ option, label, testid, height = 280 }: ChartProps) {
  const ref = useRef<HTMLDivElement>(null);
  const chartRef = useRef<ReturnType<typeof import('../lib/echarts').init> | null>(null);

  useEffect(() => {
    const el = ref.current!;
    let disposed = false;
    let ro: ResizeObserver | undefined;
    el.dataset.rendered = 'false';
    void loadECharts().then((ec) => {
      if (disposed) return;
      const chart = ec.getInstanceByDom(el) ?? ec.init(el, null, { renderer: 'svg' });
      chartRef.current = chart;
      chart.on('finished', () => {
        el.dataset.rendered = 'true';
      });
      ro = new ResizeObserver(() => chart.resize());
      ro.observe(el);
    });
    return () => {
      disposed = true;
      ro?.disconnect();
      chartRef.current?.dispose();
      chartRef.current = null;
    };
  }, []);

  useEffect(() => {
    const el = ref.current!;
    el.dataset.rendered = 'false';
    void loadECharts().then(() => {
      const chart = chartRef.current;
      if (!chart) return;
      chart.setOption(
        {
          color: PALETTE,
          animation: false,
          textStyle: { fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif", color: '#1a1a1a', fontSize: 12 },
          tooltip: { trigger: 'axis', confine: true },
          grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
          ...option,
        },
        true,
      );
    });
  }, [option]);

  return <div ref={ref} class="chart" role="img" aria-label={label} data-testid={testid} style={{ height: `${height}px` }} />;
}

interface ChartPanelProps extends ChartProps {
  title: string;
  /** Headings of the data table and CSV file. */
  columns: string[];
  /** The chart's data, row by row, as shown in the table and written to the CSV file. */
  rows: (string | number)[][];
  filename: string;
  /** Rows formatted for the table, when they read better formatted (money); defaults to `rows`. */
  displayRows?: (string | number)[][];
}

/** A chart with its title, a "Download CSV" button and its data in a table. */
export function ChartPanel(props: ChartPanelProps) {
  const { title, columns, rows, filename, displayRows } = props;
  const headingId = `${props.testid}-title`;
  return (
    <section class="panel chart-panel" aria-labelledby={headingId}>
      <div class="panel-head">
        <h2 id={headingId}>{title}</h2>
        <button type="button" class="secondary" onClick={() => downloadCsv(filename, columns, rows)}>
          Download CSV<span class="visually-hidden"> of {title.toLowerCase()}</span>
        </button>
      </div>
      <Chart option={props.option} label={props.label} testid={props.testid} height={props.height} />
      <details>
        <summary>Data table: {title.toLowerCase()}</summary>
        <div class="table-wrap" tabIndex={0} role="region" aria-label={`${title}: data`}>
          <table>
            <caption class="visually-hidden">{title}</caption>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {(displayRows ?? rows).map((r, i) => (
                <tr key={i}>
                  {r.map((v, j) => (j === 0 ? <th scope="row" key={j}>{v}</th> : <td key={j} class={typeof v === 'number' ? 'num' : undefined}>{v}</td>))}
                </tr>
              ))}
              {rows.length === 0 && (
                <tr>
                  <td colSpan={columns.length}>No data yet.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </details>
    </section>
  );
}
