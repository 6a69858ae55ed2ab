// ESLint: typescript-eslint's type-checked rules on every TypeScript file (floating and misused
// promises above all), tuned to what this code keeps; formatting is oxfmt's (Prettier's style, .oxfmtrc.json),
// never a lint rule. `npm run lint` prints the findings grouped by file, then a count per file.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// node:test's test() and describe() return promises the runner awaits itself.
const nodeTest = { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] };

export default tseslint.config(
  { ignores: ['node_modules/**', '.agentcron/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      // A leading underscore marks what is left out on purpose (a destructured field, an Express
      // error handler's fourth argument).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // An async function that implements an async contract (an agent, a job, a source) need not await.
      '@typescript-eslint/require-await': 'off',
      // Passing on what an AbortSignal or a caught error holds is fine; a literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // A promise returned inside try/catch/finally must be awaited there, or the finally runs first.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
    },
  },
  {
    // The dashboard's browser modules: the JavaScript rules, and promises checked with the types
    // of libs/ui/tsconfig.json (JSDoc, the API's answers from the server's schemas).
    files: ['libs/ui/static/**/*.js'],
    extends: [js.configs.recommended],
    plugins: { '@typescript-eslint': tseslint.plugin },
    languageOptions: {
      globals: globals.browser,
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // Tests read JSON answers as `any` on purpose: the unsafe-any family would only add casts. So do
    // the CLI (it prints whatever JSON the API answered), the API reference page and its examples
    // (they walk the generated OpenAPI document), the error shaping of arbitrary thrown values and
    // the bench (it reads its own JSON lines): their inputs are JSON of known origin, checked where
    // it matters, and the promise rules still apply there.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'libs/cli/**/*.ts', 'libs/http/docs.ts', 'libs/http/examples.ts', 'libs/http/errors.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
