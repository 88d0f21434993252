import { render } from 'preact';
import { App } from './app';
import { loadECharts } from './lib/chart-types';
import './style.css';

// The dashboard draws charts straight away: fetch the chart library while the session is restored.
if (location.pathname === '/') void loadECharts();

render(<App />, document.getElementById('app')!);
