import type { Sweep } from '../api';
import { ApiError } from '../errors';
import {
  defaultText,
  EMPTY_FORM,
  isSweeping,
  loggedMetrics,
  parseValues,
  planSweep,
  splitEscaped,
  type SweepApi,
  type SweepForm,
  SweepManager,
  sweepSummary,
  trialTable,
  valueText
} from '../sweeps';
import { parameter, sweep, trial } from './fixtures';

const alpha = parameter({ name: 'alpha', type: 'float', default: 1.0 });
const depth = parameter({ name: 'depth', type: 'int', default: null, optional: true });
const name = parameter({ name: 'name', type: 'str', default: 'a' });
const layers = parameter({ name: 'layers', type: 'list', default: [64] });

function form(overrides: Partial<SweepForm> = {}): SweepForm {
  return { ...EMPTY_FORM, open: true, ...overrides };
}

describe('parseValues', () => {
  it('counts the distinct values of a comma-separated list', () => {
    expect(parseValues(alpha, '0.1, 1,10', false)).toEqual({ ok: true, count: 3 });
    expect(parseValues(alpha, '1,1.0e0,2', false)).toEqual({ ok: true, count: 2 }); // 1 = 1.0
    expect(parseValues(depth, '2,4,None', false)).toEqual({ ok: true, count: 3 });
    expect(parseValues(alpha, '   ', false)).toEqual({ ok: true, count: 0 }); // the default
  });

  it('names the value that is not of the parameter’s type', () => {
    expect(parseValues(depth, '2,many', false)).toEqual({
      ok: false,
      error: '“many” is not a whole number: list values like 100,200,400'
    });
    expect(parseValues(depth, '2.5', false).ok).toBe(false);
    expect(parseValues(alpha, '0.1,', false)).toMatchObject({
      ok: false,
      error: expect.stringContaining('an empty value')
    });
    // None only where the parameter accepts it
    expect(parseValues(alpha, '0.1,None', false).ok).toBe(false);
  });

  it('takes a range only with random draws, LOW below HIGH, log above 0', () => {
    expect(parseValues(alpha, '0.001:0.1:log', true)).toEqual({ ok: true, count: null });
    expect(parseValues(alpha, '0.001:0.1', false)).toMatchObject({
      ok: false,
      error: expect.stringContaining('random draws')
    });
    expect(parseValues(alpha, '1:0.1', true)).toMatchObject({ ok: false });
    expect(parseValues(alpha, '0:1:log', true)).toMatchObject({
      ok: false,
      error: 'a log range needs LOW above 0'
    });
    expect(parseValues(alpha, '0:1:exp', true)).toMatchObject({ ok: false });
    expect(parseValues(depth, '1.5:3', true)).toMatchObject({ ok: false });
  });

  it('splits strings at unescaped commas and takes lists as one list of candidates', () => {
    expect(splitEscaped('a\\,b,c')).toEqual(['a,b', 'c']);
    expect(parseValues(name, 'a\\,b,c', false)).toEqual({ ok: true, count: 2 });
    expect(parseValues(layers, '[[64, 32], [128]]', false)).toEqual({ ok: true, count: 2 });
    expect(parseValues(layers, '[64, 32]', false)).toEqual({ ok: true, count: 2 });
    expect(parseValues(layers, '64', false)).toMatchObject({ ok: false });
    expect(parseValues(layers, '- [64]\n- [128]', false)).toEqual({ ok: true, count: 1 }); // YAML
  });
});

describe('planSweep', () => {
  const parameters = [alpha, depth, name];

  it('sends the text of the fields filled in, and counts a grid’s trials', () => {
    const plan = planSweep(
      'work/ridge.ipynb',
      parameters,
      form({ values: { alpha: ' 0.1,1,10 ', depth: '2,None', name: '' } }),
      ['score']
    );
    expect(plan).toEqual({
      errors: {},
      problem: null,
      trials: 6,
      request: { path: 'work/ridge.ipynb', values: { alpha: '0.1,1,10', depth: '2,None' } }
    });
  });

  it('sends random draws, their seed, the metric and which way is better', () => {
    const plan = planSweep(
      'nb.ipynb',
      parameters,
      form({
        values: { alpha: '0.001:0.1:log' },
        random: '12',
        seed: '7',
        metric: 'auc',
        direction: 'min'
      }),
      ['auc', 'loss']
    );
    expect(plan.trials).toBe(12);
    expect(plan.request).toEqual({
      path: 'nb.ipynb',
      values: { alpha: '0.001:0.1:log' },
      random: 12,
      seed: 7,
      metric: 'auc',
      maximize: false
    });
  });

  it('sends nothing while a field is wrong or nothing is swept', () => {
    const wrong = planSweep('nb.ipynb', parameters, form({ values: { depth: '2,x' } }));
    expect(wrong.request).toBeNull();
    expect(Object.keys(wrong.errors)).toEqual(['depth']);
    const fixed = planSweep('nb.ipynb', parameters, form({ values: { alpha: '0.5' } }));
    expect(fixed.problem).toMatch(/^nothing to sweep/);
    expect(fixed.request).toBeNull();
    const draws = planSweep(
      'nb.ipynb',
      parameters,
      form({ values: { alpha: '1,2' }, random: '0' })
    );
    expect(draws.problem).toMatch(/^random draws/);
  });

  it('asks for the metric when the notebook logs several, and for one when it logs none', () => {
    const values = { alpha: '1,2' };
    expect(planSweep('nb', parameters, form({ values }), ['a', 'b']).problem).toBe(
      'choose the metric that picks the best trial'
    );
    expect(planSweep('nb', parameters, form({ values }), []).problem).toMatch(/no stage logs/);
    expect(planSweep('nb', parameters, form({ values }), ['a']).request).not.toBeNull();
  });

  it('shows each default as Python writes it', () => {
    expect(defaultText(depth)).toBe('None');
    expect(defaultText(alpha)).toBe('1');
    expect(defaultText(layers)).toBe('[64]');
    expect(defaultText(parameter({ type: 'bool', default: false }))).toBe('False');
  });

  it('offers the metrics the stages log, once each, in stage order', () => {
    expect(loggedMetrics([{ metrics: ['score'] }, { metrics: ['auc', 'score'] }])).toEqual([
      'score',
      'auc'
    ]);
  });
});

describe('the table of trials', () => {
  const ended = sweep({
    status: 'succeeded',
    space: { alpha: '0.1,1,10', depth: '2,None' },
    best: 1,
    trials: [
      trial({
        number: 1,
        parameters: { alpha: 0.1, depth: null },
        status: 'succeeded',
        metric: 0.987654,
        mlflow_url: 'http://ui/#/experiments/1/runs/r1'
      }),
      trial({
        number: 2,
        parameters: { alpha: 1, depth: 2 },
        status: 'failed',
        error: 'ValueError: boom'
      }),
      trial({
        number: 3,
        parameters: { alpha: 1 / 3, depth: 2 },
        status: 'succeeded',
        metric: 0.5,
        shared: ['load']
      })
    ]
  });

  it('has a column per swept parameter, the metric and the status; the best marked', () => {
    const table = trialTable(ended);
    expect(table.columns).toEqual(['alpha', 'depth']);
    expect(table.metric).toBe('score');
    expect(table.rows.map(row => [row.number, ...row.values, row.metric, row.status])).toEqual([
      [1, '0.1', 'None', '0.9877', 'succeeded'],
      [2, '1', '2', '', 'failed'],
      [3, '0.333333', '2', '0.5', 'succeeded']
    ]);
    expect(table.rows.map(row => row.best)).toEqual([true, false, false]);
    expect(table.rows[1].error).toBe('ValueError: boom');
    expect(table.rows[0].url).toBe('http://ui/#/experiments/1/runs/r1');
    expect(table.rows[2].shared).toEqual(['load']);
  });

  it('writes values as the command’s table does', () => {
    expect(valueText(null)).toBe('None');
    expect(valueText(true)).toBe('True');
    expect(valueText([64, 32])).toBe('[64, 32]');
    expect(valueText({ a: [1] })).toBe('{"a": [1]}');
    expect(valueText(0.000123456789)).toBe('0.000123457');
  });

  it('sums the sweep up in one line', () => {
    expect(sweepSummary(ended)).toBe('3 of 3 trials done, 1 failed · best: trial 1, highest score');
    expect(sweepSummary(sweep({ maximize: false }))).toBe(
      '0 of 3 trials done · best by lowest score'
    );
  });
});

function fakeApi(overrides: Partial<SweepApi> = {}): jest.Mocked<SweepApi> {
  return {
    startSweep: jest.fn(async () => sweep({ status: 'queued' })),
    getSweep: jest.fn(async (): Promise<Sweep> => sweep()),
    listSweeps: jest.fn(async (): Promise<Sweep[]> => []),
    stopSweep: jest.fn(async () => sweep()),
    resumeSweep: jest.fn(async () => sweep({ status: 'queued' })),
    ...overrides
  } as jest.Mocked<SweepApi>;
}

const start = {
  path: 'work/ridge.ipynb',
  parameters: [alpha],
  metrics: ['score'],
  save: () => Promise.resolve()
};

async function tick(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('SweepManager', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('saves, starts the sweep the form describes and polls it until it ends', async () => {
    const order: string[] = [];
    const done = sweep({ status: 'succeeded', best: 1 });
    const answers = [sweep(), done];
    const api = fakeApi({
      startSweep: jest.fn(async () => {
        order.push('start');
        return sweep({ status: 'queued' });
      }),
      getSweep: jest.fn(async () => answers.shift() ?? done)
    });
    const manager = new SweepManager({ api, pollInterval: 1000 });
    manager.edit('nb', { open: true });
    manager.editValue('nb', 'alpha', '0.1,1,10');
    const save = jest.fn(async () => {
      order.push('save');
    });
    const state = await manager.start('nb', { ...start, save });
    expect(order).toEqual(['save', 'start']);
    expect(api.startSweep).toHaveBeenCalledWith({
      path: 'work/ridge.ipynb',
      values: { alpha: '0.1,1,10' }
    });
    expect(state).toMatchObject({ busy: false, error: null });
    expect(state.sweep?.status).toBe('queued');
    expect(isSweeping(state.sweep)).toBe(true);
    expect(state.form.values).toEqual({ alpha: '0.1,1,10' }); // kept for the next one

    await manager.start('nb', start); // one at a time
    expect(api.startSweep).toHaveBeenCalledTimes(1);
    await tick(1000);
    expect(manager.get('nb').sweep?.status).toBe('running');
    await tick(1000);
    expect(manager.get('nb').sweep).toEqual(done);
    await tick(5000);
    expect(api.getSweep).toHaveBeenCalledTimes(2);
    manager.dispose();
  });

  it('shows the server’s refusal by the form, and starts nothing it can tell is wrong', async () => {
    const api = fakeApi({
      startSweep: jest.fn(async () => {
        throw new ApiError(400, 'no parameter `alpa`: did you mean `alpha`?');
      })
    });
    const manager = new SweepManager({ api });
    await manager.start('nb', start); // nothing swept yet
    expect(api.startSweep).not.toHaveBeenCalled();
    manager.editValue('nb', 'alpha', '1,2');
    const state = await manager.start('nb', start);
    expect(state).toMatchObject({
      sweep: null,
      busy: false,
      error: 'no parameter `alpa`: did you mean `alpha`?'
    });
    manager.dispose();
  });

  it('stops the sweep shown, follows it to stopped, and resumes it', async () => {
    const stopped = sweep({ status: 'stopped' });
    const api = fakeApi({
      listSweeps: jest.fn(async () => [sweep(), sweep({ id: '20261203-101500-000000' })]),
      getSweep: jest.fn(async () => stopped)
    });
    const manager = new SweepManager({ api, pollInterval: 1000 });
    await manager.load('nb', 'work/ridge.ipynb'); // the newest, still running
    expect(api.listSweeps).toHaveBeenCalledWith('work/ridge.ipynb');
    expect(manager.get('nb').sweep?.id).toBe('20261203-141500-a1b2c3');
    await manager.stop('nb');
    expect(api.stopSweep).toHaveBeenCalledWith('20261203-141500-a1b2c3');
    await tick(1000);
    expect(manager.get('nb').sweep?.status).toBe('stopped');
    await manager.stop('nb'); // not running any more
    expect(api.stopSweep).toHaveBeenCalledTimes(1);

    await manager.resume('nb');
    expect(api.resumeSweep).toHaveBeenCalledWith('20261203-141500-a1b2c3');
    expect(manager.get('nb').sweep?.status).toBe('queued');
    await manager.load('nb', 'work/ridge.ipynb'); // one shown: kept
    expect(api.listSweeps).toHaveBeenCalledTimes(1);
    manager.dispose();
  });

  it('stops following a sweep the server no longer knows', async () => {
    const api = fakeApi({
      getSweep: jest.fn(async () => {
        throw new ApiError(404, 'no sweep `20261203-141500-a1b2c3`');
      })
    });
    const manager = new SweepManager({ api, pollInterval: 1000 });
    manager.editValue('nb', 'alpha', '1,2');
    await manager.start('nb', start);
    await tick(1000);
    expect(manager.get('nb')).toMatchObject({ sweep: null });
    expect(manager.get('nb').error).toMatch(/no sweep/);
    await tick(5000);
    expect(api.getSweep).toHaveBeenCalledTimes(1);
    manager.dispose();
  });
});
