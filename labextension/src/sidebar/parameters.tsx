/** The pipeline parameters as a typed form, prefilled with the notebook's defaults. */
import * as React from 'react';

import type { Parameter } from '../api';
import { type FormState, parseValue, rawDefault, type RawValue } from '../params';
import { Breakable } from './common';

/** Names longer than this (in characters) go on a line of their own, above the input. */
const STACK_AFTER = 12;

export function ParameterForm(props: {
  parameters: readonly Parameter[];
  form: FormState;
  onEdit: (name: string, raw: RawValue) => void;
  onReset: () => void;
}): React.ReactElement {
  const { parameters, form } = props;
  if (parameters.length === 0) {
    return (
      <p className="jp-mlops-empty">
        No parameters. Tag a cell “parameters” and write lines like{' '}
        <code>n_estimators: int = 200 # trees</code>.
      </p>
    );
  }
  const edited = parameters.some(p => form[p.name]?.edited);
  return (
    <form className="jp-mlops-params" onSubmit={event => event.preventDefault()}>
      {parameters.map(parameter => (
        <ParameterField
          key={parameter.name}
          parameter={parameter}
          raw={form[parameter.name]?.raw ?? rawDefault(parameter)}
          onEdit={raw => props.onEdit(parameter.name, raw)}
        />
      ))}
      {edited && (
        <button type="button" className="jp-mlops-link-button" onClick={props.onReset}>
          Reset to the notebook’s defaults
        </button>
      )}
    </form>
  );
}

function ParameterField(props: {
  parameter: Parameter;
  raw: RawValue;
  onEdit: (raw: RawValue) => void;
}): React.ReactElement {
  const { parameter, raw, onEdit } = props;
  const parsed = parseValue(parameter, raw);
  const id = `jp-mlops-param-${parameter.name}`;
  const type = parameter.optional ? `${parameter.type} | None` : parameter.type;
  // A long name gets a line of its own above its input, instead of a cut-off column.
  const stacked = parameter.name.length > STACK_AFTER;
  const classes = [
    'jp-mlops-param',
    parsed.ok ? '' : 'jp-mod-invalid',
    stacked ? 'jp-mod-stacked' : ''
  ];
  return (
    <div
      className={classes.filter(Boolean).join(' ')}
      data-param={parameter.name}
      data-type={parameter.type}
    >
      <label htmlFor={id}>
        <span className="jp-mlops-param-name">
          <Breakable text={parameter.name} />
        </span>{' '}
        <span className="jp-mlops-param-type">{type}</span>
      </label>
      <Input id={id} parameter={parameter} raw={raw} onEdit={onEdit} />
      {parameter.help && <div className="jp-mlops-param-help">{parameter.help}</div>}
      {!parsed.ok && (
        <div className="jp-mlops-param-error" role="alert">
          {parsed.error}
        </div>
      )}
    </div>
  );
}

function Input(props: {
  id: string;
  parameter: Parameter;
  raw: RawValue;
  onEdit: (raw: RawValue) => void;
}): React.ReactElement {
  const { id, parameter, raw, onEdit } = props;
  switch (parameter.type) {
    case 'bool':
      return (
        <input
          id={id}
          type="checkbox"
          checked={raw === true}
          onChange={event => onEdit(event.target.checked)}
        />
      );
    case 'int':
    case 'float':
      return (
        <input
          id={id}
          className="jp-mod-styled"
          type="number"
          step={parameter.type === 'int' ? 1 : 'any'}
          value={String(raw)}
          placeholder={parameter.optional ? 'None' : undefined}
          onChange={event => onEdit(event.target.value)}
        />
      );
    case 'str':
      return (
        <input
          id={id}
          className="jp-mod-styled"
          type="text"
          value={String(raw)}
          placeholder={parameter.optional ? 'None' : undefined}
          onChange={event => onEdit(event.target.value)}
        />
      );
    default:
      return (
        <textarea
          id={id}
          className="jp-mod-styled"
          rows={2}
          spellCheck={false}
          value={String(raw)}
          placeholder={parameter.optional ? 'null' : 'JSON'}
          onChange={event => onEdit(event.target.value)}
        />
      );
  }
}
