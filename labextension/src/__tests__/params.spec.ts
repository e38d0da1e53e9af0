import type { Parameter } from '../api';
import {
  collectValues,
  editField,
  ParameterForms,
  parseValue,
  rawDefault,
  syncForm
} from '../params';
import { parameter } from './fixtures';

function param(type: Parameter['type'], extra: Partial<Parameter> = {}): Parameter {
  return parameter({ name: type, type, ...extra });
}

describe('parseValue', () => {
  it('reads ints strictly', () => {
    expect(parseValue(param('int'), ' 42 ')).toEqual({ ok: true, value: 42 });
    expect(parseValue(param('int'), '-3')).toEqual({ ok: true, value: -3 });
    expect(parseValue(param('int'), '4.5').ok).toBe(false);
    expect(parseValue(param('int'), '1e3').ok).toBe(false);
    expect(parseValue(param('int'), '').ok).toBe(false);
  });

  it('reads floats', () => {
    expect(parseValue(param('float'), '0.25')).toEqual({ ok: true, value: 0.25 });
    expect(parseValue(param('float'), '1e-3')).toEqual({ ok: true, value: 0.001 });
    expect(parseValue(param('float'), '.5')).toEqual({ ok: true, value: 0.5 });
    expect(parseValue(param('float'), '0x10').ok).toBe(false);
    expect(parseValue(param('float'), 'abc').ok).toBe(false);
  });

  it('lets an optional parameter be empty', () => {
    expect(parseValue(param('int', { optional: true }), '')).toEqual({ ok: true, value: null });
    expect(parseValue(param('str', { optional: true }), '')).toEqual({ ok: true, value: null });
    expect(parseValue(param('str'), '')).toEqual({ ok: true, value: '' });
  });

  it('reads booleans from the checkbox', () => {
    expect(parseValue(param('bool'), true)).toEqual({ ok: true, value: true });
    expect(parseValue(param('bool'), false)).toEqual({ ok: true, value: false });
  });

  it('checks JSON and its shape', () => {
    expect(parseValue(param('list'), '[1, 2]')).toEqual({ ok: true, value: [1, 2] });
    expect(parseValue(param('list'), '{"a": 1}').ok).toBe(false);
    expect(parseValue(param('dict'), '{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseValue(param('dict'), '[1]').ok).toBe(false);
    expect(parseValue(param('any'), '"text"')).toEqual({ ok: true, value: 'text' });
    expect(parseValue(param('any'), '[1,')).toEqual({ ok: false, error: 'this is not valid JSON' });
  });
});

describe('rawDefault', () => {
  it('shows each type’s default in its field', () => {
    expect(rawDefault(param('int', { default: 200 }))).toBe('200');
    expect(rawDefault(param('int', { default: null, optional: true }))).toBe('');
    expect(rawDefault(param('bool', { default: true }))).toBe(true);
    expect(rawDefault(param('str', { default: 'gini' }))).toBe('gini');
    expect(rawDefault(param('list', { default: [1, 2] }))).toBe('[1,2]');
  });
});

describe('the form', () => {
  const n = parameter({ name: 'n', default: 100 });
  const rate = parameter({ name: 'rate', type: 'float', default: 0.1 });

  it('follows new defaults but keeps edits', () => {
    let form = syncForm({}, [n, rate]);
    expect(form).toEqual({ n: { raw: '100', edited: false }, rate: { raw: '0.1', edited: false } });
    form = editField(form, 'rate', '0.5');
    form = syncForm(form, [
      { ...n, default: 300 },
      { ...rate, default: 0.2 }
    ]);
    expect(form.n).toEqual({ raw: '300', edited: false });
    expect(form.rate).toEqual({ raw: '0.5', edited: true });
  });

  it('drops fields of removed parameters and is stable when nothing changed', () => {
    const form = syncForm({}, [n, rate]);
    expect(Object.keys(syncForm(form, [n]))).toEqual(['n']);
    expect(syncForm(form, [n, rate])).toBe(form);
  });

  it('collects only edited values that differ from the defaults', () => {
    let form = syncForm({}, [n, rate]);
    form = editField(form, 'n', '100');
    expect(collectValues(form, [n, rate])).toEqual({ values: {}, errors: {} });
    form = editField(form, 'rate', '0.5');
    expect(collectValues(form, [n, rate]).values).toEqual({ rate: 0.5 });
    form = editField(form, 'n', 'many');
    expect(collectValues(form, [n, rate]).errors).toEqual({
      n: 'a whole number is required, like 42'
    });
  });

  it('keeps one form per notebook and signals changes', () => {
    const forms = new ParameterForms();
    const seen: string[] = [];
    forms.changed.connect((_, key) => seen.push(key));
    forms.sync('a', [n]);
    forms.sync('a', [n]);
    forms.edit('b', 'n', '5');
    expect(seen).toEqual(['a', 'b']);
    expect(forms.get('a').n.raw).toBe('100');
    forms.reset('b', [n]);
    expect(forms.get('b').n).toEqual({ raw: '100', edited: false });
    forms.dispose();
    expect(forms.isDisposed).toBe(true);
  });
});
