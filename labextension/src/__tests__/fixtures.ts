/** Server answers shaped like docs/REST-API.md, for the tests. */
import type {
  Analysis,
  Diagnostic,
  Parameter,
  Run,
  StageRun,
  Sweep,
  SweepTrial,
  Verification,
  VerifyDifference,
  VerifyReport
} from '../api';

export function parameter(overrides: Partial<Parameter> = {}): Parameter {
  return {
    name: 'n_estimators',
    type: 'int',
    default: 200,
    help: 'trees in the forest',
    cell: 2,
    line: 1,
    optional: false,
    ...overrides
  };
}

export function diagnostic(overrides: Partial<Diagnostic> = {}): Diagnostic {
  return {
    severity: 'error',
    code: 'undefined-name',
    message: 'stage `train` reads `X`, which no stage, setup cell or parameter defines',
    cell: 6,
    related_cell: null,
    line: 2,
    ...overrides
  };
}

export function analysis(overrides: Partial<Analysis> = {}): Analysis {
  return {
    ok: true,
    settings: {
      pipeline: 'churn',
      experiment: 'churn',
      model_name: 'churn',
      kernel: null,
      fit_data: {}
    },
    stages: [
      {
        name: 'load',
        cells: [3, 4],
        inputs: {},
        outputs: ['df'],
        parameters: [],
        after: [],
        upstream: [],
        metrics: [],
        models: {},
        touched: ['df'],
        definitions: {},
        replay: []
      },
      {
        name: 'train',
        cells: [6],
        inputs: { df: 'load' },
        outputs: [],
        parameters: ['n_estimators'],
        after: [],
        upstream: ['load'],
        metrics: ['accuracy'],
        models: { clf: 'X_train' },
        touched: ['clf', 'accuracy'],
        definitions: { featurize: 4 },
        replay: []
      }
    ],
    edges: [{ source: 'load', target: 'train', variables: ['df'], explicit: false }],
    parameters: [parameter()],
    setup_cells: [0],
    cells: [],
    diagnostics: [],
    imports: ['numpy'],
    ...overrides
  };
}

export function stageRun(overrides: Partial<StageRun> = {}): StageRun {
  return {
    name: 'load',
    status: 'queued',
    started: null,
    finished: null,
    duration: null,
    cells: [3, 4],
    mlflow_run_id: null,
    mlflow_url: null,
    cached_from: null,
    error: null,
    metrics: {},
    ...overrides
  };
}

export function run(overrides: Partial<Run> = {}): Run {
  return {
    id: '20261127-101500-3fa2c1',
    pipeline: 'churn',
    path: 'work/churn.ipynb',
    status: 'running',
    created: 1795000000.1,
    finished: null,
    parameters: {},
    stages: [stageRun(), stageRun({ name: 'train', cells: [6] })],
    error: null,
    mlflow: null,
    models: [],
    warnings: [],
    ...overrides
  };
}

export function difference(overrides: Partial<VerifyDifference> = {}): VerifyDifference {
  return {
    stage: 'b',
    variable: 'n',
    label: 'n',
    readers: ['c'],
    cell: 2,
    detail: 'the notebook has 2, the pipeline 1',
    unseeded: false,
    ...overrides
  };
}

export function verifyReport(overrides: Partial<VerifyReport> = {}): VerifyReport {
  return {
    notebook: 'work/nb.ipynb',
    folder: '',
    stages: 3,
    values: 2,
    plain_seconds: 1.7,
    pipeline_seconds: 12.4,
    identical: true,
    differences: [],
    ...overrides
  };
}

export function verification(overrides: Partial<Verification> = {}): Verification {
  return {
    id: '20261127-101500-3fa2c1',
    path: 'work/nb.ipynb',
    status: 'running',
    report: null,
    error: null,
    ...overrides
  };
}

export function trial(overrides: Partial<SweepTrial> = {}): SweepTrial {
  return {
    number: 1,
    parameters: { alpha: 0.1 },
    status: 'pending',
    run_id: null,
    mlflow_run_id: null,
    metric: null,
    metrics: {},
    shared: [],
    error: null,
    duration: null,
    mlflow_url: null,
    ...overrides
  };
}

export function sweep(overrides: Partial<Sweep> = {}): Sweep {
  return {
    id: '20261203-141500-a1b2c3',
    pipeline: 'ridge',
    path: 'work/ridge.ipynb',
    status: 'running',
    metric: 'score',
    maximize: true,
    space: { alpha: '0.1,1,10' },
    fixed: {},
    seed: null,
    created: 1764770100,
    finished: null,
    trials: [
      trial({ number: 1, parameters: { alpha: 0.1 } }),
      trial({ number: 2, parameters: { alpha: 1 } }),
      trial({ number: 3, parameters: { alpha: 10 } })
    ],
    best: null,
    models: [],
    folder: 'mlops-runs/ridge/sweeps/20261203-141500-a1b2c3',
    error: null,
    mlflow: { tracking_uri: 'sqlite:///mlflow.db', experiment_id: '1', run_id: 'abc', url: null },
    ...overrides
  };
}
