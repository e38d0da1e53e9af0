import {
  addModel,
  clearAllRoles,
  clearRole,
  hasMetrics,
  hasRole,
  isIdentifier,
  isValidStageName,
  modelsOf,
  readTags,
  setMetrics,
  setRole,
  setStage,
  stageOf,
  suggestStageName
} from '../tags';

describe('reading tags', () => {
  it('finds the stage in both dialects', () => {
    expect(stageOf(['stage:load'])).toBe('load');
    expect(stageOf(['block:load'])).toBe('load');
    expect(stageOf(['step:train', 'other'])).toBe('train');
    expect(stageOf(['after:load', 'prev:x'])).toBeNull();
  });

  it("reads Kale's plain tags as our roles", () => {
    expect(hasRole(['imports'], 'setup')).toBe(true);
    expect(hasRole(['functions'], 'setup')).toBe(true);
    expect(hasRole(['pipeline-parameters'], 'parameters')).toBe(true);
    expect(hasMetrics(['pipeline-metrics'])).toBe(true);
    expect(hasRole(['block:a'], 'stage')).toBe(true);
    expect(hasRole(['setup'], 'skip')).toBe(false);
  });

  it('lists model variables', () => {
    expect(modelsOf(['model:clf', 'stage:x', 'model:enc'])).toEqual(['clf', 'enc']);
  });

  it('keeps only strings from metadata', () => {
    expect(readTags(['a', 3, null, 'b'])).toEqual(['a', 'b']);
    expect(readTags(undefined)).toEqual([]);
    expect(readTags('stage:a')).toEqual([]);
  });
});

describe('setStage', () => {
  it('adds the stage tag and keeps other tools’ tags in order', () => {
    expect(setStage(['hide-input', 'raises-exception'], 'load')).toEqual([
      'stage:load',
      'hide-input',
      'raises-exception'
    ]);
  });

  it('replaces every other role, whatever its dialect, in place', () => {
    expect(setStage(['x', 'skip', 'y'], 'train')).toEqual(['x', 'stage:train', 'y']);
    expect(setStage(['block:old', 'imports', 'metrics'], 'new')).toEqual(['stage:new', 'metrics']);
    expect(setStage(['pipeline-parameters', 'functions'], 'a')).toEqual(['stage:a']);
  });

  it('keeps dependencies and models, but not a dependency on itself', () => {
    expect(setStage(['stage:a', 'after:load', 'prev:train', 'model:clf'], 'train')).toEqual([
      'stage:train',
      'after:load',
      'model:clf'
    ]);
  });

  it('returns the same array when nothing changes', () => {
    const tags = ['hide-input', 'stage:load', 'metrics'];
    expect(setStage(tags, 'load')).toBe(tags);
  });

  it("keeps a Kale user's spelling of the same stage", () => {
    const tags = ['block:load'];
    expect(setStage(tags, 'load')).toBe(tags);
    expect(setStage(['skip', 'block:load'], 'load')).toEqual(['block:load']);
  });

  it('refuses invalid names', () => {
    expect(() => setStage([], 'Load Data')).toThrow('not a valid stage name');
    expect(() => setStage([], '1st')).toThrow();
  });
});

describe('setRole and clearRole', () => {
  it('makes roles mutually exclusive', () => {
    expect(setRole(['stage:load', 'keep'], 'setup')).toEqual(['setup', 'keep']);
    expect(setRole(['setup'], 'skip')).toEqual(['skip']);
    expect(setRole(['skip', 'block:x'], 'parameters')).toEqual(['parameters']);
  });

  it("drops a stage's dependencies with the stage role", () => {
    expect(setRole(['stage:b', 'after:a', 'prev:c', 'other'], 'skip')).toEqual(['skip', 'other']);
  });

  it('keeps metrics and model tags: the analysis reports them, the user decides', () => {
    expect(setRole(['stage:b', 'metrics', 'model:clf'], 'setup')).toEqual([
      'setup',
      'metrics',
      'model:clf'
    ]);
  });

  it('is a no-op when the role is already there, in either dialect', () => {
    const kale = ['imports', 'x'];
    expect(setRole(kale, 'setup')).toBe(kale);
    const native = ['x', 'skip'];
    expect(setRole(native, 'skip')).toBe(native);
  });

  it('clears a role in every dialect and nothing else', () => {
    expect(clearRole(['imports', 'a', 'setup', 'functions'], 'setup')).toEqual(['a']);
    expect(clearRole(['pipeline-parameters', 'b'], 'parameters')).toEqual(['b']);
    const untouched = ['stage:a'];
    expect(clearRole(untouched, 'skip')).toBe(untouched);
  });

  it('clears whatever role there is', () => {
    expect(clearAllRoles(['stage:a', 'after:b', 'metrics', 'x'])).toEqual(['metrics', 'x']);
    const none = ['metrics'];
    expect(clearAllRoles(none)).toBe(none);
  });
});

describe('metrics and models', () => {
  it('toggles metrics without duplicating', () => {
    expect(setMetrics(['stage:a'], true)).toEqual(['stage:a', 'metrics']);
    const kale = ['pipeline-metrics'];
    expect(setMetrics(kale, true)).toBe(kale);
    expect(setMetrics(['metrics', 'pipeline-metrics', 'x'], false)).toEqual(['x']);
  });

  it('adds a model once', () => {
    expect(addModel(['stage:train'], 'clf')).toEqual(['stage:train', 'model:clf']);
    const tags = ['model:clf'];
    expect(addModel(tags, 'clf')).toBe(tags);
    expect(() => addModel([], 'my model')).toThrow('not a Python variable name');
  });
});

describe('names', () => {
  it('validates stage names like the Python side', () => {
    expect(isValidStageName('load_2')).toBe(true);
    expect(isValidStageName('Load')).toBe(false);
    expect(isValidStageName('_x')).toBe(false);
    expect(isValidStageName('')).toBe(false);
  });

  it('suggests a fixed name', () => {
    expect(suggestStageName('Load Data')).toBe('load_data');
    expect(suggestStageName('  train-model! ')).toBe('train_model');
    expect(suggestStageName('2nd pass')).toBe('stage_2nd_pass');
    expect(suggestStageName('***')).toBe('stage');
  });

  it('validates variable names', () => {
    expect(isIdentifier('X_train')).toBe(true);
    expect(isIdentifier('_private')).toBe(true);
    expect(isIdentifier('9lives')).toBe(false);
  });
});
