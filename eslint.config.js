// Lint is part of `npm test`: size budgets, no console in lib/, the layers and no import
// cycles (docs/architecture.md), and promises that are never left floating.
//
// Layers: client -> broker port <- broker -> store -> io. lib/client imports only
// lib/broker/port.ts of the broker and nothing of the store; lib/message-store.ts is the one
// module where client, broker and store meet; lib/cli sits on top of the public API, and
// lib/jetstream on nothing but it (the public barrel).
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const budgets = {
  'max-lines': ['error', { max: 450, skipBlankLines: true, skipComments: true }],
  'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
  'max-len': ['error', { code: 100, ignoreUrls: true, ignoreRegExpLiterals: true }],
};

/** Import patterns (relative, any depth) that reach into `dir` of lib/. */
const into = (dir) => [`../${dir}/**`, `../../${dir}/**`, `../../../${dir}/**`,
  `./${dir}/**`];

const above = (layer, dirs) => dirs.map((dir) => ({ group: into(dir),
  message: `${layer} must not import lib/${dir}: imports flow client -> broker port <- ` +
    'broker -> store -> io (docs/architecture.md)' }));

const facade = {
  group: ['**/message-store.js', '**/index.js', '**/internal.js', '**/storage.js'],
  message: 'the public barrels and the store facade sit above every layer',
};

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'data/**', 'docs/**',
    'test/fixtures/**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    languageOptions: { parserOptions: { projectService: true } },
    rules: {
      ...budgets,
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    files: ['lib/**/*.ts'],
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver()],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
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
        ...above('io', ['client', 'broker', 'cli', 'remote', 'replication', 'jetstream']),
        facade,
        { group: ['../*.js', '!../../*'], message: 'io is the bottom layer: it must not import store' },
      ] }],
    },
  },
  {
    files: ['lib/store/**/*.ts'],
    ignores: ['lib/store/io/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      ...above('store', ['client', 'broker', 'cli', 'remote', 'replication', 'jetstream']),
      facade,
    ] }] },
  },
  {
    files: ['lib/replication/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      ...above('replication', ['client', 'broker', 'cli', 'remote', 'jetstream']), facade,
    ] }] },
  },
  {
    files: ['lib/broker/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      ...above('broker', ['client', 'cli', 'remote', 'jetstream']), facade,
    ] }] },
  },
  {
    files: ['lib/client/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      ...above('client', ['store', 'cli', 'remote', 'replication', 'jetstream']),
      facade,
      { group: [...into('broker'), '!../broker/port.js'],
        message: 'clients reach the broker only through lib/broker/port.ts' },
    ] }] },
  },
  {
    files: ['lib/jetstream/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      { group: ['../**', '!../index.js'],
        message: 'lib/jetstream uses pocketmq through its public barrel (../index.js) only' },
    ] }] },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'max-lines-per-function': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
