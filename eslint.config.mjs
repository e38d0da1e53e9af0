// ESLint for the JupyterLab extension (TypeScript under labextension/src). Formatting is
// Prettier's job; eslint-config-prettier turns off the rules that would fight it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/', 'lib/', 'jupyter_mlops/', '.venv/', 'coverage/']
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['labextension/src/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    languageOptions: { globals: globals.browser },
    rules: {
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      '@typescript-eslint/no-namespace': 'off',
      curly: ['error', 'all'],
      eqeqeq: ['error', 'smart'],
      'no-console': ['error', { allow: ['warn', 'error'] }],
      'prefer-const': 'error'
    }
  },
  {
    files: ['labextension/src/__tests__/**/*.ts'],
    languageOptions: { globals: globals.jest }
  },
  {
    files: ['*.js', '*.mjs'],
    languageOptions: { globals: globals.node }
  },
  {
    files: ['jest.config.js'],
    languageOptions: { sourceType: 'commonjs' }
  },
  prettier
);
