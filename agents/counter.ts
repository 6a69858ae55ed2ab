import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { EphemeralValue } from '@langchain/langgraph/channels';

// `counter`: the smallest proof that a thread cron continues a conversation, offline (no model).
// Each run increments `count` and appends its input's `message` to `log`; the state lives in the
// checkpointer under the thread id, so run n of a thread cron sees what runs 1..n-1 left.
//
//   input  {"message": "anything JSON"}   (optional; null is logged without one)
//   state  {"count": 3, "log": ["a", "b", "c"]}

const CounterState = Annotation.Root({
  count: Annotation<number>({ reducer: (_, next) => next, default: () => 0 }),
  log: Annotation<unknown[]>({ reducer: (log, entries) => [...log, ...entries], default: () => [] }),
});

// The message is read by this run only: an ephemeral channel is not carried to the next run,
// so a run without a message logs null instead of repeating the previous one.
const CounterInput = Annotation.Root({
  message: Annotation<unknown>,
});
const channels = { ...CounterState.spec, message: new EphemeralValue<unknown>() };

export const graph = new StateGraph({ stateSchema: Annotation.Root(channels), input: CounterInput, output: CounterState })
  .addNode('tick', (state) => ({ count: state.count + 1, log: [state.message ?? null] }))
  .addEdge(START, 'tick')
  .addEdge('tick', END)
  .compile();
