export { main } from './commands.ts';
