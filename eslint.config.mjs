// ESLint for the TypeScript of lib/, test/ and bench/ and the JavaScript of scripts/ and esm/
// (`npm run lint`; test/unit/lint.test.ts runs it in `npm test`). The recommended rules of
// ESLint and typescript-eslint, not the type-aware set: tsc -p . already checks types (strict),
// and the type-aware rules would double the time of a run for little we do not already catch.
// Formatting is prettier's (.prettierrc.json), not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = Object.fromEntries(
  [
    'process',
    'Buffer',
    'console',
    'require',
    'module',
    'exports',
    '__dirname',
    '__filename',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'URL',
    'TextEncoder',
    'TextDecoder',
    'AbortController',
    'queueMicrotask',
    'structuredClone',
    'performance',
    'fetch',
    'globalThis',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'prebuilds/', 'docs/api/', 'native/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: nodeGlobals },
    rules: {
      // `_name` marks an argument or binding kept for its position or to document a shape.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The addon is loaded with require() (node-gyp-build finds the binary at run time).
      '@typescript-eslint/no-require-imports': 'off',
      // A `let` that a cleanup closure reads before the assignment stays a `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests hand malformed input to typed APIs and reach into internals on purpose: `any` is
    // how they say so. The library and the benchmarks keep the rule.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['scripts/**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);
