// Lint is part of `npm test`: size budgets, no console in lib/, imports only downward
// (client -> broker -> store -> io). See ../shared/STYLE.md habits 2, 3 and 17.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const budgets = {
  'max-lines': ['error', { max: 450, skipBlankLines: true, skipComments: true }],
  'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
  'max-len': ['error', { code: 100, ignoreUrls: true, ignoreRegExpLiterals: true }],
};

const upward = (names) =>
  names.map((name) => ({ group: [`**/${name}/**`, `../${name}/*`, `../../${name}/*`],
    message: `imports flow client -> broker -> store -> io; ${name} is above this layer` }));

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'data/**', 'test/fixtures/**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      ...budgets,
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['lib/**/*.ts'],
    ignores: ['lib/cli/**'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['lib/store/io/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        ...upward(['client', 'broker', 'cli']),
        { group: ['../*.js', '!../../*'], message: 'io is the bottom layer: it must not import store' },
      ] }],
    },
  },
  {
    files: ['lib/store/**/*.ts'],
    ignores: ['lib/store/io/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: upward(['client', 'broker', 'cli']) }] },
  },
  {
    files: ['lib/broker/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: upward(['client', 'cli']) }] },
  },
  {
    files: ['lib/client/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: upward(['cli']) }] },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'max-lines-per-function': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
