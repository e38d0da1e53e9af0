/** The stages in run order, each with its colour, cells and the variables it takes and gives. */
import * as React from 'react';

import type { Analysis, Stage } from '../api';
import { stageColor } from '../palette';
import { Breakable, CellLinks, Names } from './common';

export function StageList(props: {
  analysis: Analysis;
  onShowCell: (index: number) => void;
}): React.ReactElement {
  const { analysis, onShowCell } = props;
  const parameterCells = [...new Set(analysis.parameters.map(p => p.cell))];
  return (
    <div className="jp-mlops-stages">
      {analysis.stages.length === 0 ? (
        <p className="jp-mlops-empty">
          No stages yet. Select a cell and use “Set Pipeline Stage…” from its toolbar or right-click
          menu.
        </p>
      ) : (
        <ol className="jp-mlops-stage-list">
          {analysis.stages.map((stage, position) => (
            <StageRow key={stage.name} stage={stage} position={position} onShowCell={onShowCell} />
          ))}
        </ol>
      )}
      {(analysis.setup_cells.length > 0 || parameterCells.length > 0) && (
        <dl className="jp-mlops-shared-cells">
          {analysis.setup_cells.length > 0 && (
            <div>
              <dt>setup</dt>
              <dd>
                <CellLinks cells={analysis.setup_cells} onShow={onShowCell} />
              </dd>
            </div>
          )}
          {parameterCells.length > 0 && (
            <div>
              <dt>parameters</dt>
              <dd>
                <CellLinks cells={parameterCells} onShow={onShowCell} />
              </dd>
            </div>
          )}
        </dl>
      )}
    </div>
  );
}

function StageRow(props: {
  stage: Stage;
  position: number;
  onShowCell: (index: number) => void;
}): React.ReactElement {
  const { stage, position, onShowCell } = props;
  const takes = Object.keys(stage.inputs).sort();
  const models = Object.keys(stage.models);
  const style = { '--jp-mlops-stage-color': stageColor(position) } as React.CSSProperties;
  return (
    <li className="jp-mlops-stage" data-stage={stage.name} style={style}>
      <div className="jp-mlops-stage-head">
        <span className="jp-mlops-stage-name">
          <Breakable text={stage.name} />
        </span>
        <span className="jp-mlops-stage-cells">
          cells <CellLinks cells={stage.cells} onShow={onShowCell} />
        </span>
      </div>
      <dl className="jp-mlops-stage-facts">
        <Fact label="takes" names={takes} title={name => `from stage ${stage.inputs[name]}`} />
        <Fact
          label="defines"
          names={Object.keys(stage.definitions ?? {})}
          title={name => `defined again from cell ${stage.definitions[name]}`}
        />
        <Fact label="gives" names={stage.outputs} />
        <Fact label="parameters" names={stage.parameters} />
        <Fact label="metrics" names={stage.metrics} />
        <Fact
          label="models"
          names={models}
          title={name => `input example from \`${stage.models[name]}\``}
        />
        <Fact label="after" names={stage.after} />
      </dl>
    </li>
  );
}

function Fact(props: {
  label: string;
  names: readonly string[];
  title?: (name: string) => string;
}): React.ReactElement | null {
  if (props.names.length === 0) {
    return null;
  }
  return (
    <div className="jp-mlops-fact" data-fact={props.label}>
      <dt>{props.label}</dt>
      <dd>
        <Names names={props.names} title={props.title} />
      </dd>
    </div>
  );
}
