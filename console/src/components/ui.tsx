import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, messageOf } from '../lib/api';

/**
 * The answer of `load` for `key`, asked `delay` ms after `key` last changed (as a person types): a newer key aborts
 * the older request, and an answer that comes late is dropped. With `skip`, nothing is asked and both are unset.
 * The last answer stays while the next is asked, so a live counter does not flicker.
 */
export function useDebouncedRequest<T>(key: string, load: (signal: AbortSignal) => Promise<T>, delay: number, skip = false) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (skip) {
      setData(undefined);
      setError(undefined);
      return;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      load(ctl.signal).then(
        (d) => {
          if (ctl.signal.aborted) return;
          setData(d);
          setError(undefined);
        },
        (e) => {
          if (ctl.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
          setError(e);
        },
      );
    }, delay);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, skip]);
  return { data, error };
}

/** Sets the page's title: "<title> · Almoner". */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Almoner`;
  }, [title]);
}

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/** Runs `load` on mount and whenever `deps` change; stale answers are dropped. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(undefined);
    load(ctl.signal).then(
      (d) => {
        if (!ctl.signal.aborted) {
          setData(d);
          setLoading(false);
        }
      },
      (e) => {
        if (!ctl.signal.aborted) {
          setError(e);
          setLoading(false);
        }
      },
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData };
}

/** An error for people: the problem's `detail`, announced. */
export function ErrorAlert({ error, children }: { error: unknown; children?: ComponentChildren }) {
  if (!error) return null;
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div class="alert error" role="alert">
      <p>{notFound ? 'Not found: it may have been deleted, or belong to another organisation.' : messageOf(error)}</p>
      {error instanceof ApiError && error.fieldErrors.length > 0 && (
        <ul>
          {error.fieldErrors.map((f) => (
            <li key={f.field}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
      {children}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="loading" role="status">
      {what}…
    </p>
  );
}

let fieldSeq = 0;
export function useId(prefix = 'f'): string {
  const ref = useRef<string>();
  if (!ref.current) ref.current = `${prefix}-${++fieldSeq}`;
  return ref.current;
}

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'label' | 'onInput' | 'value'> & {
  label: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  error?: string;
  hint?: ComponentChildren;
  inputRef?: preact.Ref<HTMLInputElement>;
};

/** What a control inside a `FieldFrame` is given: its id, and the attributes that tie it to the hint and error. */
interface ControlAttrs {
  id: string;
  'aria-invalid': 'true' | undefined;
  'aria-describedby': string | undefined;
}

/**
 * A control's label, hint and error (from the problem's `errors[]`), tied to it by id and `aria-describedby`: the
 * frame every field of a form shares, whatever its control.
 */
function FieldFrame(props: { id?: unknown; class?: unknown; label: ComponentChildren; hint?: ComponentChildren; error?: string; children: (attrs: ControlAttrs) => ComponentChildren }) {
  const auto = useId();
  const fid = (props.id as string | undefined) ?? auto;
  const { hint, error } = props;
  const describedBy = [hint ? `${fid}-hint` : '', error ? `${fid}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field ${(props.class as string | undefined) ?? ''}`}>
      <label for={fid}>{props.label}</label>
      {hint && (
        <span class="hint" id={`${fid}-hint`}>
          {hint}
        </span>
      )}
      {props.children({ id: fid, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': describedBy })}
      {error && (
        <span class="field-error" id={`${fid}-error`}>
          {error}
        </span>
      )}
    </div>
  );
}

/** A labelled input with its hint and its error tied to it. */
export function Field({ label, value, onValue, error, hint, inputRef, id, class: cls, ...rest }: InputProps) {
  return (
    <FieldFrame id={id} class={cls} label={label} hint={hint} error={error}>
      {(attrs) => <input {...rest} {...attrs} ref={inputRef} value={value} onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)} />}
    </FieldFrame>
  );
}

type SelectProps = Omit<JSX.SelectHTMLAttributes<HTMLSelectElement>, 'label' | 'value'> & {
  label: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  options: { value: string; label: string }[];
  error?: string;
  hint?: ComponentChildren;
};

export function SelectField({ label, value, onValue, options, error, hint, id, class: cls, ...rest }: SelectProps) {
  return (
    <FieldFrame id={id} class={cls} label={label} hint={hint} error={error}>
      {(attrs) => (
        <select {...rest} {...attrs} value={value} onChange={(e) => onValue((e.currentTarget as HTMLSelectElement).value)}>
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </FieldFrame>
  );
}

/** "Next page" for a list with a cursor. */
export function Pager({ next, onNext, onFirst, atFirst }: { next?: string | null; onNext: () => void; onFirst: () => void; atFirst: boolean }) {
  if (!next && atFirst) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {!atFirst && (
        <button type="button" class="secondary" onClick={onFirst}>
          First page
        </button>
      )}
      {next && (
        <button type="button" class="secondary" onClick={onNext}>
          Next page
        </button>
      )}
    </nav>
  );
}

/** A list page with a cursor: the current page, and moving on. */
export function useCursor(reset: unknown[]) {
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  useEffect(() => setCursor(undefined), reset);
  return { cursor, setCursor, atFirst: cursor === undefined };
}

export function Badge({ children, tone = 'neutral' }: { children: ComponentChildren; tone?: 'neutral' | 'good' | 'warn' | 'bad' }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

type TextAreaProps = Omit<JSX.TextareaHTMLAttributes<HTMLTextAreaElement>, 'label' | 'onInput' | 'value'> & {
  label: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  error?: string;
  hint?: ComponentChildren;
  textareaRef?: preact.Ref<HTMLTextAreaElement>;
};

/** A labelled textarea with its hint and its error tied to it (as `Field`). */
export function TextAreaField({ label, value, onValue, error, hint, textareaRef, id, class: cls, ...rest }: TextAreaProps) {
  return (
    <FieldFrame id={id} class={cls} label={label} hint={hint} error={error}>
      {(attrs) => (
        <textarea {...rest} {...attrs} ref={textareaRef} value={value} onInput={(e) => onValue((e.currentTarget as HTMLTextAreaElement).value)} />
      )}
    </FieldFrame>
  );
}
