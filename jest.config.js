// Jest runs the tests of the pure modules (tags, progress, model, runs...) in Node: they
// import no JupyterLab package at run time, so no browser environment or ESM transform of
// node_modules is needed.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/labextension/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }]
  }
};
