import { RANDOM_STATE, valueName } from '../api';

describe('valueName', () => {
  it('shows the random generators state as the user knows it', () => {
    expect(valueName(RANDOM_STATE)).toBe('(random state)');
  });

  it('leaves variables as they are', () => {
    expect(valueName('df')).toBe('df');
  });
});
