// The widget's styles, inside its shadow root only; colours follow the tenant's accent colour, with text in
// whichever of near-white and near-black contrasts more with it (WCAG's contrast ratio).

const DEFAULT_ACCENT = '#1f6feb';

function luminance(hex: string): number {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [n >> 16, (n >> 8) & 255, n & 255].map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

export interface Palette {
  accent: string;
  onAccent: string;
  /** The focus ring: the accent where it shows on white (3:1), else near-black. */
  focus: string;
}

export function palette(accent: string | undefined): Palette {
  const a = accent && /^#[0-9a-f]{6}$/i.test(accent) ? accent.toLowerCase() : DEFAULT_ACCENT;
  const onAccent = contrast(a, '#ffffff') >= contrast(a, '#111111') ? '#ffffff' : '#111111';
  return { accent: a, onAccent, focus: contrast(a, '#ffffff') >= 3 ? a : '#111111' };
}

export const CSS = `
:host{all:initial}
*{box-sizing:border-box}
[hidden]{display:none!important}
.root{position:fixed;right:20px;bottom:20px;z-index:2147483000;display:flex;flex-direction:column;align-items:flex-end;gap:12px;
font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1a1a1a}
button,textarea{font:inherit;color:inherit}
:focus{outline:none}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px;box-shadow:0 0 0 2px #fff}
.sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.launcher{position:relative;width:56px;height:56px;border-radius:50%;border:2px solid #fff;background:var(--accent);color:var(--on-accent);
cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.3);display:flex;align-items:center;justify-content:center}
.launcher svg{width:28px;height:28px}
.badge{position:absolute;top:-6px;right:-6px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#b3261e;color:#fff;
font-size:13px;font-weight:700;line-height:22px;text-align:center;border:2px solid #fff}
.panel{width:min(370px,calc(100vw - 40px));height:min(560px,calc(100vh - 110px));background:#fff;border-radius:12px;
box-shadow:0 6px 30px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden;border:1px solid #c9ced6}
.head{background:var(--accent);color:var(--on-accent);padding:12px 12px 12px 16px;display:flex;align-items:flex-start;gap:8px}
.head div{flex:1}
.title{font-weight:700;font-size:16px;margin:0}
.greet{margin:4px 0 0;font-size:14px}
.close{background:transparent;border:0;color:inherit;cursor:pointer;width:32px;height:32px;border-radius:6px;font-size:22px;line-height:1}
.status{margin:0;padding:4px 16px;font-size:12px;color:#4a4f57;background:#f4f5f7;border-bottom:1px solid #e1e4e8}
.status[data-state=reconnecting]{color:#7a4a00;background:#fff4d6}
.log{flex:1;overflow-y:auto;padding:12px 16px;display:flex;flex-direction:column;gap:8px}
.msg{max-width:85%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.msg.member{align-self:flex-end;background:var(--accent);color:var(--on-accent);border-bottom-right-radius:4px}
.msg.staff{align-self:flex-start;background:#eceef1;color:#1a1a1a;border-bottom-left-radius:4px}
.meta{display:block;font-size:12px;margin-top:2px}
.msg.failed{outline:2px solid #b3261e}
.meta button{background:#fff;color:#1a1a1a;border:1px solid #1a1a1a;border-radius:4px;padding:0 6px;margin-left:6px;cursor:pointer;font-size:12px}
.msg img{display:block;max-width:100%;max-height:220px;border-radius:6px;margin-top:6px;background:#fff}
.msg a{color:inherit;display:inline-block;margin-top:4px}
.notice,.error{margin:0 16px 8px;padding:8px 12px;border-radius:8px;font-size:14px}
.notice{background:#f4f5f7}
.error{background:#fdecea;color:#8c1d18;font-size:13px;overflow-wrap:anywhere}
.error:empty{display:none}
.composer{display:flex;align-items:flex-end;gap:6px;padding:8px;border-top:1px solid #e1e4e8}
textarea{flex:1;resize:none;min-height:44px;max-height:120px;padding:10px;border:1px solid #6b7280;border-radius:8px;background:#fff}
.icon{width:44px;height:44px;flex:none;border:1px solid #6b7280;border-radius:8px;background:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center}
.icon svg{width:22px;height:22px}
.send{height:44px;padding:0 14px;border:0;border-radius:8px;background:var(--accent);color:var(--on-accent);font-weight:600;cursor:pointer}
.empty{color:#4a4f57;font-size:14px;text-align:center;margin:auto 0}
`;
