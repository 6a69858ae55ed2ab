export { uiRouter } from './router.ts';
