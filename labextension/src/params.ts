/**
 * The pipeline parameters form: text typed into it, checked against each parameter's type.
 *
 * The form keeps what the user typed per notebook. Fields the user has not touched follow
 * the notebook's defaults as the analysis updates; only the values that differ from the
 * notebook's defaults are sent with a run, since the defaults are already in the notebook.
 */
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import type { Parameter } from './api';

/** What a field holds: text for every type but `bool`, which is a checkbox. */
export type RawValue = string | boolean;

export interface Field {
  raw: RawValue;
  edited: boolean;
}

export type FormState = Readonly<Record<string, Field>>;

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The field content that shows a parameter's default. */
export function rawDefault(parameter: Parameter): RawValue {
  const value = parameter.default;
  switch (parameter.type) {
    case 'bool':
      return value === true;
    case 'int':
    case 'float':
      return typeof value === 'number' ? String(value) : '';
    case 'str':
      return typeof value === 'string' ? value : '';
    default:
      return value === undefined ? '' : JSON.stringify(value);
  }
}

/** Read a field's content as a value of the parameter's type. */
export function parseValue(parameter: Parameter, raw: RawValue): Parsed {
  if (parameter.type === 'bool') {
    return { ok: true, value: raw === true };
  }
  const text = String(raw);
  if (parameter.type === 'str') {
    return { ok: true, value: text === '' && parameter.optional ? null : text };
  }
  const trimmed = text.trim();
  if (trimmed === '') {
    return parameter.optional
      ? { ok: true, value: null }
      : { ok: false, error: 'a value is required' };
  }
  switch (parameter.type) {
    case 'int': {
      const value = Number(trimmed);
      return INT.test(trimmed) && Number.isSafeInteger(value)
        ? { ok: true, value }
        : { ok: false, error: 'a whole number is required, like 42' };
    }
    case 'float': {
      const value = Number(trimmed);
      return FLOAT.test(trimmed) && Number.isFinite(value)
        ? { ok: true, value }
        : { ok: false, error: 'a number is required, like 0.25' };
    }
    default:
      return parseJSONValue(parameter, trimmed);
  }
}

function parseJSONValue(parameter: Parameter, text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'this is not valid JSON' };
  }
  if (parameter.type === 'list' && !Array.isArray(value)) {
    return { ok: false, error: 'a JSON list is required, like [1, 2]' };
  }
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (parameter.type === 'dict' && !isObject) {
    return { ok: false, error: 'a JSON object is required, like {"a": 1}' };
  }
  return { ok: true, value };
}

/**
 * Bring a form up to date with the notebook's parameters: new parameters get their
 * default, fields the user has not edited follow a changed default, edited fields stay,
 * fields of parameters that are gone are dropped.
 */
export function syncForm(form: FormState, parameters: readonly Parameter[]): FormState {
  const next: Record<string, Field> = {};
  for (const parameter of parameters) {
    const field = form[parameter.name];
    const raw = rawDefault(parameter);
    next[parameter.name] =
      field && (field.edited || field.raw === raw) ? field : { raw, edited: false };
  }
  const same =
    Object.keys(form).length === parameters.length &&
    parameters.every(p => form[p.name] === next[p.name]);
  return same ? form : next;
}

export function editField(form: FormState, name: string, raw: RawValue): FormState {
  return { ...form, [name]: { raw, edited: true } };
}

export interface Collected {
  /** values that differ from the notebook's defaults, ready for `POST runs` */
  values: Record<string, unknown>;
  /** parameter name -> why its field can't be read */
  errors: Record<string, string>;
}

export function collectValues(form: FormState, parameters: readonly Parameter[]): Collected {
  const values: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const parameter of parameters) {
    const field = form[parameter.name];
    if (!field?.edited) {
      continue;
    }
    const parsed = parseValue(parameter, field.raw);
    if (!parsed.ok) {
      errors[parameter.name] = parsed.error;
    } else if (JSON.stringify(parsed.value) !== JSON.stringify(parameter.default ?? null)) {
      values[parameter.name] = parsed.value;
    }
  }
  return { values, errors };
}

/** The forms of all open notebooks, by notebook key, with a signal for the sidebar. */
export class ParameterForms implements IDisposable {
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get(key: string): FormState {
    return this._forms.get(key) ?? {};
  }

  sync(key: string, parameters: readonly Parameter[]): void {
    this._set(key, syncForm(this.get(key), parameters));
  }

  edit(key: string, name: string, raw: RawValue): void {
    this._set(key, editField(this.get(key), name, raw));
  }

  /** Forget the user's edits: every field shows the notebook's default again. */
  reset(key: string, parameters: readonly Parameter[]): void {
    this._set(key, syncForm({}, parameters));
  }

  forget(key: string): void {
    this._forms.delete(key);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._forms.clear();
    Signal.clearData(this);
  }

  private _set(key: string, form: FormState): void {
    if (this._forms.get(key) !== form) {
      this._forms.set(key, form);
      this._changed.emit(key);
    }
  }

  private _disposed = false;
  private _forms = new Map<string, FormState>();
  private _changed = new Signal<this, string>(this);
}
