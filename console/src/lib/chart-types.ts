import type { ComposeOption } from 'echarts/core';
import type { BarSeriesOption } from 'echarts/charts';
import type { GridComponentOption, LegendComponentOption, TooltipComponentOption } from 'echarts/components';

export type ChartOption = ComposeOption<
  BarSeriesOption | GridComponentOption | LegendComponentOption | TooltipComponentOption
>;

let loading: Promise<typeof import('./echarts')> | undefined;

/** Loads the ECharts chunk once; call early to fetch it while data loads. */
export function loadECharts() {
  loading ??= import('./echarts');
  return loading;
}

/** Colours with at least 3:1 contrast against white, told apart without relying on hue alone (patterns by series order). */
export const PALETTE = ['#1d5fa6', '#b24a12', '#2b7a3d', '#7a3e9d', '#5c5c5c', '#a3195b'];
