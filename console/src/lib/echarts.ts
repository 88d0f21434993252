// ECharts, imported modularly: only the chart types and components the console draws, rendered as SVG.
// This module is loaded lazily (its own chunk) through loadECharts().
import { init, use, getInstanceByDom } from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

use([BarChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);

export { init, getInstanceByDom };
