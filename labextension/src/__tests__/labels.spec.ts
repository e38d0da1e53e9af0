import { breakPoints, fontMeasure, wrapText } from '../cells/labels';

/** Every character 1 px wide: widths are lengths. */
const chars = (text: string) => text.length;

describe('where a long name may break', () => {
  it('breaks after underscores, dashes, slashes, dots and colons, and before @', () => {
    expect(breakPoints('train_logistic_regression')).toEqual(['train_', 'logistic_', 'regression']);
    expect(breakPoints('20261127-101500-3fa2c1')).toEqual(['20261127-', '101500-', '3fa2c1']);
    expect(breakPoints('models:/wine_classifier@candidate')).toEqual([
      'models:/',
      'wine_',
      'classifier',
      '@candidate'
    ]);
    expect(breakPoints('sqlite:///tmp/mlflow.db')).toEqual(['sqlite:///', 'tmp/', 'mlflow.', 'db']);
  });

  it('keeps a name without break points whole, and runs of separators together', () => {
    expect(breakPoints('evaluate')).toEqual(['evaluate']);
    expect(breakPoints('__init__')).toEqual(['__', 'init__']);
    expect(breakPoints('trailing_')).toEqual(['trailing_']);
    expect(breakPoints('')).toEqual(['']);
  });

  it('never changes the text', () => {
    for (const text of ['a_b-c/d.e:f@g', '@home', 'x@@y', '_lead', 'plain']) {
      expect(breakPoints(text).join('')).toBe(text);
    }
  });
});

describe('wrapping a name onto lines', () => {
  it('puts whole pieces on a line while they fit', () => {
    expect(wrapText('load_the_raw_data', 9, chars)).toEqual(['load_the_', 'raw_data']);
    expect(wrapText('train', 9, chars)).toEqual(['train']);
    expect(wrapText('a_b_c', 9, chars)).toEqual(['a_b_c']);
  });

  it('cuts a piece longer than a line where it must, leaving nothing out', () => {
    const lines = wrapText('preprocessing_of_measurements', 8, chars);
    expect(lines).toEqual(['preproce', 'ssing_', 'of_', 'measurem', 'ents']);
    expect(lines.join('')).toBe('preprocessing_of_measurements');
    expect(Math.max(...lines.map(chars))).toBeLessThanOrEqual(8);
  });

  it('gives one line for an empty name and never loops on a tiny width', () => {
    expect(wrapText('', 10, chars)).toEqual(['']);
    expect(wrapText('abc', 0, chars)).toEqual(['a', 'b', 'c']);
  });

  it('measures by characters where there is no canvas', () => {
    const measure = fontMeasure('11px sans-serif');
    expect(measure('abcd')).toBeCloseTo(4 * 11 * 0.62);
  });
});
